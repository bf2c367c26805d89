import { celEnv, isCelError, isCelList, isCelMap, isCelUint, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { RE2JS } from 're2js';
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
  /** False when the guard (before `;`) is false: the rule does not apply to this value. */
  guardPasses(bindings: CelBindings): boolean;
  /** The expression's value as plain JS (maps become objects, lists arrays); throws with CEL's error text. */
  evaluate(bindings: CelBindings): unknown;
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

function planOne(text: string): (bindings: CelBindings) => unknown {
  const parsed = parse(text);
  if (comprehensionDepth(parsed.expr) > MAX_COMPREHENSION_DEPTH) throw new Error('a comprehension (all, exists, map, filter) may not contain another: evaluation time must stay bounded');
  const run = plan(ENV, parsed) as (bindings: CelBindings) => unknown;
  return run;
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

/** Compiles a rule's expression; throws with the parser's message (or a bound's) when it cannot run. */
export function compileCel(expr: string): CelProgram {
  if (expr.length > MAX_EXPRESSION_LENGTH) throw new Error(`the expression has ${expr.length} characters; at most ${MAX_EXPRESSION_LENGTH}`);
  const split = expr.indexOf(';');
  const guardText = split >= 0 ? expr.slice(0, split).trim() : '';
  const guard = guardText === '' ? undefined : planOne(guardText);
  const body = planOne(split >= 0 ? expr.slice(split + 1) : expr);
  return {
    guardPasses: (bindings) => guard === undefined || checked(guard(bindings)) !== false,
    evaluate: (bindings) => fromCel(checked(body(bindings))),
  };
}
