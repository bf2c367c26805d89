import { qualifiedName, RUNTIME, type CompileContext, type Compiled, type Expr } from './cel-compile.ts';

/**
 * CEL's fast subset compiled to one generated JS function instead of a tree of closures: field selects, literals,
 * `==` `!=` `<` `<=` `>` `>=`, `&&` `||` `!` `?:`, `in`, `size()`, `has()`, `contains`/`startsWith`/`endsWith`.
 * Why: the closures (cel-compile.ts) cost one indirect call per node and box every intermediate result; the rule
 * `message.amount > 0 && message.currency in [...]` took ≈130 ns per event as closures, ≈80 ns generated (bench/rules-profile.ts).
 *
 * The generated function decides exactly as the closures do (same value, FAIL, or the throw that sends the caller
 * to @bufbuild/cel): it calls the closures' own helpers (RUNTIME) wherever the case is not a trivial one, and
 * evaluates operands in the same order with the same FAIL checks. Anything outside the subset (arithmetic,
 * indexing, matches, comprehensions, map literals, uints, bytes) makes the whole expression go to the closures.
 * tests/unit/rules-cel-codegen.test.ts compares the two on random expressions and messages.
 *
 * Safety: no text of the rule enters the generated source. Identifiers, field names, string and int literals and
 * literal lists go into the constants array `k` and are read as `k[i]`; a double literal is written only when finite,
 * as JSON.stringify of the number; everything else in the source is this file's own text (operators, temporaries).
 */

interface Emitted {
  /** Statements that compute the node (may be empty). */
  readonly code: string;
  /** A side-effect-free expression for the node's value after `code`: a temporary, a literal or `k[i]`. */
  readonly value: string;
  /** The CEL int literal this node is, when it is one (comparisons against numbers then use its double form). */
  readonly int?: bigint;
  /** For size(): a temporary holding the count as a JS number (or FAIL), so comparing it with an int literal needs no BigInt. */
  readonly count?: string;
  /** For size(): the statements that compute `count` alone (a comparison on the count needs no CEL int). */
  readonly countCode?: string;
  /** For size(): the statements that compute its operand, its value, and then the statement that counts it (countCode is the two). */
  readonly sized?: { readonly code: string; readonly value: string; readonly count: string };
  /** For a literal list of strings: the `k[i]` holding their Set. */
  readonly stringSet?: string;
}

const COMPARISONS: Record<string, string> = { '_<_': '<', '_<=_': '<=', '_>_': '>', '_>=_': '>=' };
const STRING_METHODS: Record<string, string> = { contains: 'includes', startsWith: 'startsWith', endsWith: 'endsWith' };

class Generator {
  readonly constants: unknown[] = [];
  /** Each identifier's temporary: bound once per evaluation. */
  readonly identifiers = new Map<string, string>();
  temporaries = 0;
  readonly ctx: CompileContext;

  constructor(ctx: CompileContext) {
    this.ctx = ctx;
  }

  constant(value: unknown): string {
    this.constants.push(value);
    return `k[${this.constants.length - 1}]`;
  }

  temporary(): string {
    return `t${this.temporaries++}`;
  }

  /** The node's code, or undefined when it is outside the subset. */
  node(node: Expr): Emitted | undefined {
    const kind = node.exprKind;
    switch (kind.case) {
      case 'constExpr':
        return this.literal(kind.value.constantKind);
      case 'identExpr': {
        // Bound at its first use in an evaluation, then reused: `message.a > 0 && message.b == 1` checks `message` (a
        // plain-map check of the whole event) once, not per select. B never gives undefined, so undefined is "not yet";
        // the first use throws where the closures' first use would.
        const name = kind.value.name;
        let v = this.identifiers.get(name);
        if (v === undefined) this.identifiers.set(name, (v = this.temporary()));
        return { code: `if (${v} === undefined) ${v} = B(b[${this.constant(name)}]);\n`, value: v };
      }
      case 'selectExpr': {
        const { operand, field, testOnly } = kind.value;
        if (!operand) return undefined;
        const of = this.node(operand);
        if (of === undefined) return undefined;
        const o = of.value;
        const f = this.constant(field);
        const v = this.temporary();
        if (!testOnly) {
          // A field of anything but a map (a string, a list, null, FAIL) is CEL's "field not found".
          return {
            code: `${of.code}if (typeof ${o} !== 'object' || ${o} === null || Array.isArray(${o}) || !H(${o}, ${f})) ${v} = F; else ${v} = B(${o}[${f}]);\n`,
            value: v,
          };
        }
        const w = this.temporary();
        return {
          code:
            `${of.code}if (${o} === F) ${v} = F;\n` +
            `else if (typeof ${o} !== 'object' || ${o} === null || Array.isArray(${o})) ${v} = false;\n` +
            `else if (!P(${o})) U();\n` +
            `else if (!H(${o}, ${f})) ${v} = false;\n` +
            `else { ${w} = ${o}[${f}]; if (${w} === undefined || ${w} === null) ${v} = false; else if (C(${w})) ${v} = true; else U(); }\n`,
          value: v,
        };
      }
      case 'listExpr': {
        if (kind.value.optionalIndices.length > 0) return undefined;
        const values: unknown[] = [];
        for (const e of kind.value.elements) {
          if (e.exprKind.case !== 'constExpr') return undefined;
          const c = e.exprKind.value.constantKind;
          if (c.case === 'int64Value' || c.case === 'stringValue' || c.case === 'boolValue' || (c.case === 'doubleValue' && typeof c.value === 'number')) values.push(c.value);
          else if (c.case === 'nullValue') values.push(null);
          else return undefined;
        }
        const list = this.constant(Object.freeze(values));
        return values.every((x) => typeof x === 'string') ? { code: '', value: list, stringSet: this.constant(new Set(values)) } : { code: '', value: list };
      }
      case 'callExpr':
        return this.call(kind.value);
      default:
        return undefined;
    }
  }

  literal(c: Extract<Expr['exprKind'], { case: 'constExpr' }>['value']['constantKind']): Emitted | undefined {
    switch (c.case) {
      case 'int64Value':
        return { code: '', value: this.constant(c.value), int: c.value };
      case 'doubleValue':
        return { code: '', value: this.number(c.value) };
      case 'stringValue':
        return { code: '', value: this.constant(c.value) };
      case 'boolValue':
        return { code: '', value: c.value === true ? 'true' : 'false' };
      case 'nullValue':
        return { code: '', value: 'null' };
      default:
        return undefined;
    }
  }

  /** A double: its JSON text when finite (and not -0, which JSON writes as 0), else a constant. */
  number(n: number): string {
    if (typeof n === 'number' && Number.isFinite(n) && !Object.is(n, -0)) return `(${JSON.stringify(n)})`;
    return this.constant(n);
  }

  call(call: { target?: Expr; function: string; args: Expr[] }): Emitted | undefined {
    const name = call.function;
    if (call.target !== undefined) {
      const qualified = qualifiedName(call.target);
      if (qualified !== undefined && this.ctx.hasFunction(`${qualified}.${name}`)) return undefined;
    }
    const args: Emitted[] = [];
    for (const a of call.args) {
      const e = this.node(a);
      if (e === undefined) return undefined;
      args.push(e);
    }
    let target: Emitted | undefined;
    if (call.target !== undefined) {
      target = this.node(call.target);
      if (target === undefined) return undefined;
    }
    const [a, b] = args;
    const v = this.temporary();
    switch (name) {
      case '_&&_':
      case '_||_':
        return args.length === 0 ? undefined : { code: this.logical(args, name === '_||_', v), value: v };
      case '_?_:_': {
        if (args.length !== 3) return undefined;
        const [c, t, f] = args as [Emitted, Emitted, Emitted];
        return {
          code: `${c.code}if (${c.value} === true) { ${t.code}${v} = ${t.value}; } else if (${c.value} === false) { ${f.code}${v} = ${f.value}; } else ${v} = F;\n`,
          value: v,
        };
      }
      case '!_':
        if (a === undefined) return undefined;
        return { code: `${a.code}${v} = typeof ${a.value} === 'boolean' ? !${a.value} : F;\n`, value: v };
      case '_==_':
      case '_!=_': {
        if (a === undefined || b === undefined) return undefined;
        const s = this.temporary();
        const same = name === '_==_' ? s : `!${s}`;
        return {
          code: `${a.code}if (${a.value} === F) ${v} = F; else { ${b.code}if (${b.value} === F) ${v} = F; else { ${s} = E(${a.value}, ${b.value}); ${v} = ${s} === F ? F : ${same}; } }\n`,
          value: v,
        };
      }
      case '_<_':
      case '_<=_':
      case '_>_':
      case '_>=_': {
        if (a === undefined || b === undefined) return undefined;
        const op = COMPARISONS[name]!;
        const c = this.temporary();
        const l = a.value;
        const r = b.value;
        // Same-typed numbers and strings compare as JS compares them (compare() does just that); an int literal
        // against a double compares as a double, as compare() converts it.
        let fast = `(typeof ${l} === typeof ${r} && (typeof ${l} === 'number' || typeof ${l} === 'bigint' || typeof ${l} === 'string')) ? ${l} ${op} ${r}`;
        // size() against an int literal: its count against the literal as JS numbers (counts are far below 2^53, so exact).
        if (a.count !== undefined && b.int !== undefined && b.code === '') {
          const limit = this.number(Number(b.int));
          const counted = `${a.countCode}${v} = ${a.count} === F ? F : ${a.count} ${op} ${limit};\n`;
          if ((op !== '<' && op !== '<=') || a.sized === undefined) return { code: counted, value: v };
          // A string's size (code points) is at most its length (UTF-16 units): a length below the bound decides
          // `<` and `<=` without counting (the count's scan for surrogate pairs was most of `size(value) <= 64`).
          const s = a.sized.value;
          return {
            code: `${a.sized.code}if (typeof ${s} === 'string' && ${s}.length ${op} ${limit}) ${v} = true; else { ${a.sized.count}${v} = ${a.count} === F ? F : ${a.count} ${op} ${limit}; }\n`,
            value: v,
          };
        }
        if (b.int !== undefined) fast = `typeof ${l} === 'number' ? ${l} ${op} ${this.number(Number(b.int))} : ${fast}`;
        else if (a.int !== undefined) fast = `typeof ${r} === 'number' ? ${this.number(Number(a.int))} ${op} ${r} : ${fast}`;
        return {
          code: `${a.code}if (${l} === F) ${v} = F; else { ${b.code}if (${r} === F) ${v} = F; else ${v} = ${fast} : (${c} = O(${l}, ${r})) === F ? F : ${c} ${op} 0; }\n`,
          value: v,
        };
      }
      case '@in': {
        if (a === undefined || b === undefined) return undefined;
        if (b.stringSet !== undefined)
          // A string against string literals: equal only to an identical string; any other CEL value is unequal to every string.
          return { code: `${a.code}${v} = ${a.value} === F ? F : typeof ${a.value} === 'string' ? ${b.stringSet}.has(${a.value}) : false;\n`, value: v };
        return {
          code: `${a.code}if (${a.value} === F) ${v} = F; else { ${b.code}${v} = ${b.value} === F ? F : N(${b.value}, ${a.value}); }\n`,
          value: v,
        };
      }
      case 'size': {
        const of = target ?? (args.length === 1 ? a : undefined);
        if (of === undefined || args.length !== (target ? 0 : 1)) return undefined;
        const n = this.temporary();
        const count = `${n} = ${of.value} === F ? F : Z(${of.value});\n`;
        const counted = `${of.code}${count}`;
        return { code: `${counted}${v} = ${n} === F ? F : I(${n});\n`, value: v, count: n, countCode: counted, sized: { code: of.code, value: of.value, count } };
      }
      case 'contains':
      case 'startsWith':
      case 'endsWith': {
        if (target === undefined || a === undefined || args.length !== 1) return undefined;
        const s = target.value;
        return {
          code: `${target.code}if (${s} === F) ${v} = F; else { ${a.code}${v} = typeof ${s} === 'string' && typeof ${a.value} === 'string' ? ${s}.${STRING_METHODS[name]!}(${a.value}) : F; }\n`,
          value: v,
        };
      }
      default:
        return undefined;
    }
  }

  /**
   * CEL's `&&` (decisive false) and `||` (decisive true) as the closures run them: every operand in order until one is
   * decisive, which wins even over an operand that failed; otherwise a failed operand fails the whole.
   */
  logical(args: readonly Emitted[], decisive: boolean, v: string): string {
    const failed = this.temporary();
    const d = String(decisive);
    const step = (i: number): string => {
      if (i === args.length) return `${v} = ${failed} ? F : ${String(!decisive)};`;
      const x = args[i]!;
      return `${x.code}if (${x.value} === ${d}) ${v} = ${d}; else { if (${x.value} !== ${String(!decisive)}) ${failed} = true; ${step(i + 1)} }`;
    };
    return `${failed} = false;\n${step(0)}\n`;
  }
}

/** How many generated functions: each one's number is in its first line, so a profile tells them apart. */
let generated = 0;

/**
 * The generated function for a whole expression, or undefined when any node of it is outside the subset (the caller
 * then uses the closures). The function returns what the closures would: the value, FAIL, or throws where they throw.
 */
export function generateFast(root: Expr, ctx: CompileContext): Compiled | undefined {
  const gen = new Generator(ctx);
  const out = gen.node(root);
  if (out === undefined) return undefined;
  const temporaries = Array.from({ length: gen.temporaries }, (_, i) => `t${i}`);
  const body =
    `// cel ${++generated}\n` +
    `const F = R.FAIL, B = R.bound, E = R.equal, O = R.compare, Z = R.count, I = R.sizeInt, N = R.contains, C = R.celable, P = R.isPlainMap, U = R.undecided, H = Object.hasOwn;\n` +
    `return function cel(b) {\n${temporaries.length > 0 ? `let ${temporaries.join(', ')};\n` : ''}${out.code}return ${out.value};\n};`;
  // The source holds no rule text (see above).
  const make = new Function('k', 'R', body) as (k: readonly unknown[], r: typeof RUNTIME) => Compiled;
  return make(Object.freeze(gen.constants), RUNTIME);
}
