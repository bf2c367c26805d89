import { celEnv, isCelError, isCelList, isCelMap, isCelUint, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { RE2JS } from 're2js';
import { generateFast } from './cel-codegen.ts';
import { compileFast, type Expr } from './cel-compile.ts';
import { MAX_EXPRESSION_LENGTH } from './types.ts';

/**
 * CEL as Confluent's executors run it (`CEL` and `CEL_FIELD`): the cel-spec
 * standard library plus the strings extension, an optional guard before the
 * first `;` (when it is false the rule is skipped: a condition passes, a
 * transform leaves the value), values bound as plain JS (numbers are CEL
 * doubles, BigInts ints, objects maps).
 *
 * Evaluation is bounded: `matches()` runs on RE2 (re2js, linear time, no
 * backtracking), each pattern compiled once; an expression is at most
 * MAX_EXPRESSION_LENGTH characters; and a comprehension (`all`, `exists`,
 * `map`, `filter`, ...) may not contain another, so one event costs at most
 * its size times the expression's.
 *
 * Speed: each expression also compiles to plain JS closures (cel-compile.ts),
 * or to one generated function when it is all in their fast subset
 * (cel-codegen.ts), that give CEL's value or "not decided"; @bufbuild/cel's program runs only
 * then (an error, a case outside the closures' subset), so every answer and
 * every error text is @bufbuild/cel's.
 */

const MAX_COMPREHENSION_DEPTH = 1;
/** Distinct `matches()` patterns kept compiled; rules name few, so this only caps a pathological set. */
const MAX_PATTERNS = 1024;

const patterns = new Map<string, RE2JS>();
const re2 = {
  compile(pattern: string): { test(text: string): boolean } {
    let re = patterns.get(pattern);
    if (re === undefined) {
      re = RE2JS.compile(pattern);
      if (patterns.size >= MAX_PATTERNS) patterns.clear();
      patterns.set(pattern, re);
    }
    return re;
  },
};

const ENV = celEnv({ funcs: strings, re2 });

export type CelBindings = Record<string, unknown>;

/** A compiled CEL rule: undefined from `guardPasses` false means "skip". */
export interface CelProgram {
  /** Whether the expression has a guard (before `;`): without one `guardPasses` is always true, and callers skip it. */
  readonly guarded: boolean;
  /** False when the guard (before `;`) is false: the rule does not apply to this value. */
  guardPasses(bindings: CelBindings): boolean;
  /** The expression's value as plain JS (maps become objects, lists arrays); throws with CEL's error text. */
  evaluate(bindings: CelBindings): unknown;
  /**
   * Whether the expression (no guard) is `true` on `bindings` as the generated code or the closures decide it alone:
   * false means "not decided here" (false, another value, an error, a case only @bufbuild/cel decides), never an
   * answer; the caller then evaluates. A passing condition's whole cost, without `evaluate`'s layers. Absent for a
   * guarded expression and for one outside the closures' subset (it would never decide).
   */
  readonly isTrue?: (bindings: CelBindings) => boolean;
}

interface AstNode {
  exprKind?: { case?: string; value?: unknown };
}

/** Deepest nesting of comprehensions in a parsed expression. */
function comprehensionDepth(node: unknown): number {
  if (typeof node !== 'object' || node === null) return 0;
  if (Array.isArray(node)) return node.reduce((max: number, n) => Math.max(max, comprehensionDepth(n)), 0);
  const kind = (node as AstNode).exprKind;
  let own = 0;
  if (kind?.case === 'comprehensionExpr') own = 1;
  let deepest = 0;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$typeName' || key === 'id' || typeof value !== 'object' || value === null) continue;
    deepest = Math.max(deepest, comprehensionDepth(value));
  }
  return own + deepest;
}

type Run = (bindings: CelBindings) => unknown;

const fallbackContext = {
  fallback: (node: Expr) => plan(ENV, node) as Run,
  regex: (pattern: string) => re2.compile(pattern),
  hasFunction: (name: string) => ENV.funcs.find(name) !== undefined,
};

/** @bufbuild/cel's program for `text` and, when its root is in the closures' subset, the generated function or the closures (undefined with `reference`). */
function planOne(text: string, reference: boolean): { run: Run; fast: Run | undefined } {
  const parsed = parse(text);
  if (comprehensionDepth(parsed.expr) > MAX_COMPREHENSION_DEPTH) throw new Error('a comprehension (all, exists, map, filter) may not contain another: evaluation time must stay bounded');
  const run = plan(ENV, parsed) as Run;
  return { run, fast: reference ? undefined : (generateFast(parsed.expr, fallbackContext) ?? compileFast(parsed.expr, fallbackContext)) };
}

/** Plain JS for what CEL returns: CelMap → object, CelList → array, int → number when exact, uint → number or BigInt. */
export function fromCel(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (isCelUint(value)) return fromCel(value.value);
  if (isCelList(value)) return Array.from(value, fromCel);
  if (isCelMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(isCelUint(k) ? k.value : k)] = fromCel(v);
    return out;
  }
  return value;
}

function checked(result: unknown): unknown {
  if (isCelError(result)) throw new Error(result.message);
  return result;
}

/** The closures' value when it is a scalar fromCel leaves as it is, else @bufbuild/cel's (errors, lists, maps). */
function evaluator(program: { run: Run; fast: Run | undefined }): (bindings: CelBindings) => unknown {
  const { run, fast } = program;
  if (fast === undefined) return (bindings) => fromCel(checked(run(bindings)));
  return (bindings) => {
    let value: unknown;
    try {
      value = fast(bindings);
    } catch {
      // Only @bufbuild/cel can say (see cel-compile.ts).
      return fromCel(checked(run(bindings)));
    }
    switch (typeof value) {
      case 'boolean':
      case 'string':
      case 'number':
        return value;
      case 'bigint':
        return fromCel(value);
      default:
        return value === null ? null : fromCel(checked(run(bindings)));
    }
  };
}

/** evaluate's `true`, from the closures alone (CelProgram.isTrue): a throw is theirs for "ask @bufbuild/cel". */
function isTrueOf(fast: Run): (bindings: CelBindings) => boolean {
  return (bindings) => {
    try {
      return fast(bindings) === true;
    } catch {
      return false;
    }
  };
}

/** A guard's verdict: anything but `false` lets the rule run (an error throws). */
function guardOf(program: { run: Run; fast: Run | undefined }): (bindings: CelBindings) => boolean {
  const { run, fast } = program;
  if (fast === undefined) return (bindings) => checked(run(bindings)) !== false;
  return (bindings) => {
    let value: unknown;
    try {
      value = fast(bindings);
    } catch {
      value = undefined;
    }
    return typeof value === 'boolean' ? value : checked(run(bindings)) !== false;
  };
}

export interface CompileOptions {
  /** @bufbuild/cel's program alone, without the closures (the differential test's reference). */
  readonly reference?: boolean;
}

/** Compiles a rule's expression; throws with the parser's message (or a bound's) when it cannot run. */
export function compileCel(expr: string, options: CompileOptions = {}): CelProgram {
  if (expr.length > MAX_EXPRESSION_LENGTH) throw new Error(`the expression has ${expr.length} characters; at most ${MAX_EXPRESSION_LENGTH}`);
  const reference = options.reference === true;
  const split = expr.indexOf(';');
  const guardText = split >= 0 ? expr.slice(0, split).trim() : '';
  const guard = guardText === '' ? undefined : guardOf(planOne(guardText, reference));
  const planned = planOne(split >= 0 ? expr.slice(split + 1) : expr, reference);
  return {
    guarded: guard !== undefined,
    guardPasses: (bindings) => guard === undefined || guard(bindings),
    evaluate: evaluator(planned),
    ...(guard === undefined && planned.fast !== undefined ? { isTrue: isTrueOf(planned.fast) } : {}),
  };
}
