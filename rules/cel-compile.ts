import { isCelError, type parse } from '@bufbuild/cel';

/**
 * A compiler from @bufbuild/cel's parsed AST to plain JS closures, for the
 * subset of CEL that data-contract rules use: field selection, literals,
 * comparisons, arithmetic, `&&` `||` `!` and `?:`, `in` on lists and maps,
 * `size`, `has`, `contains`/`startsWith`/`endsWith`, `matches`, indexing.
 *
 * Why: @bufbuild/cel's planner turns the bound message into a CEL map at every
 * reference (a `new Map(Object.entries(message))` per `message.x`), tries each
 * select as a qualified name first and dispatches every operator through its
 * overload tables: ≈2.8 µs per event for `message.amount > 0 && message.currency
 * in [...]`, more than the ingress's whole per-event budget in batches. The
 * closures here read the plain JS values directly (numbers are CEL doubles,
 * BigInts ints, arrays lists, plain objects maps, as the bindings say).
 *
 * Exactness comes from two rules. A closure returns either the value CEL
 * would give or FAIL, "not decided here", where CEL gives an error value
 * (a missing field, no matching overload, division by zero, int overflow) or
 * a value outside the subset (a list from a comprehension); `&&` and `||`
 * absorb FAIL as CEL absorbs errors (`false && error` is false). Where CEL
 * throws instead, so that the whole expression fails whatever `&&` says (a
 * bound value it cannot convert: a function, a hole in an array, an object
 * with its own `constructor`), or where the closures do not model the value
 * (bytes, a JS Map), a closure throws and the caller asks @bufbuild/cel for
 * the whole expression. The caller also runs @bufbuild/cel's own program
 * whenever the result is FAIL, so errors carry CEL's exact text. A node
 * outside the subset (a comprehension, a map literal, a uint) is planned by
 * @bufbuild/cel on its own and its result used when it is a scalar.
 * tests/unit/rules-cel-fast.test.ts checks that the two agree on random
 * expressions over random messages.
 */

export type Expr = ReturnType<typeof parse>['expr'];
export type Bindings = Record<string, unknown>;
export type Compiled = (b: Bindings) => unknown;

/** "Not decided here": an error or a case outside the subset; the caller asks @bufbuild/cel. */
export const FAIL: unique symbol = Symbol('cel-fail');

export interface CompileContext {
  /** @bufbuild/cel's program for one node; its CEL result (an error is an object, hence FAIL). */
  fallback(node: Expr): (b: Bindings) => unknown;
  /** The RE2 patterns `matches()` runs on (the same cache as @bufbuild/cel's environment). */
  regex(pattern: string): { test(text: string): boolean };
  /** Whether the environment has a function by this (qualified) name: `a.b.f()` calls it instead of a method. */
  hasFunction(name: string): boolean;
}

const MAX_INT = 9223372036854775807n;
const MIN_INT = -9223372036854775808n;

const isPlainMap = (v: object): v is Record<string, unknown> => Object.getPrototypeOf(v) === Object.prototype && !Object.hasOwn(v, 'constructor');

/**
 * Whether @bufbuild/cel binds `v` as the same CEL value the closures see
 * (toCel: primitives, null, arrays as lists, plain objects as maps). Bytes and
 * anything else go to @bufbuild/cel.
 */
function celable(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return true;
    case 'object':
      return v === null || Array.isArray(v) || isPlainMap(v);
    default:
      return false;
  }
}

/** Thrown where @bufbuild/cel would throw, or the value is outside what the closures model: the caller runs @bufbuild/cel. */
class Undecided extends Error {}
const UNDECIDED = new Undecided('undecided');

/** A value CEL has just bound (a variable, a field, an element): undefined is CEL's "not found" error; what it cannot bind, it throws on. */
function bound(v: unknown): unknown {
  if (v === undefined) return FAIL;
  if (celable(v)) return v;
  throw UNDECIDED;
}

const int = (v: bigint): bigint | typeof FAIL => (v >= MIN_INT && v <= MAX_INT ? v : FAIL);

/** CEL equality (equals.ts): numbers across int and double, lists and maps deeply; FAIL on what the closures do not model. */
function equal(l: unknown, r: unknown): boolean | typeof FAIL {
  const tl = typeof l;
  const tr = typeof r;
  if ((tl === 'number' || tl === 'bigint') && (tr === 'number' || tr === 'bigint')) return l == r;
  if (tl !== 'object' || l === null) {
    if (tr === 'object' && r !== null && !celable(r)) return FAIL;
    return l === r;
  }
  if (!celable(l)) return FAIL;
  if (tr !== 'object' || r === null) return false;
  if (!celable(r)) return FAIL;
  if (Array.isArray(l)) {
    if (!Array.isArray(r)) return false;
    if (l.length !== r.length) return false;
    for (let i = 0; i < l.length; i++) {
      const a = l[i] as unknown;
      const b = r[i] as unknown;
      if (!celable(a) || !celable(b)) return FAIL;
      const same = equal(a, b);
      if (same !== true) return same;
    }
    return true;
  }
  if (Array.isArray(r)) return false;
  const lm = l as Record<string, unknown>;
  const rm = r as Record<string, unknown>;
  const keys = Object.keys(lm);
  if (keys.length !== Object.keys(rm).length) return false;
  for (const k of keys) {
    const a = lm[k];
    if (!celable(a)) return FAIL;
    const b = rm[k];
    if (b === undefined) return false;
    if (!celable(b)) return FAIL;
    const same = equal(a, b);
    if (same !== true) return same;
  }
  return true;
}

/** `<` and friends: the overloads of std/logic.ts for bool, string, int, double (int against double as doubles); FAIL otherwise. */
function compare(l: unknown, r: unknown): number | typeof FAIL {
  const tl = typeof l;
  const tr = typeof r;
  if (tl === tr) {
    if (tl === 'number' || tl === 'bigint' || tl === 'string' || tl === 'boolean')
      return (l as number) < (r as number) ? -1 : (l as number) > (r as number) ? 1 : (l as number) === (r as number) ? 0 : NaN;
    return FAIL;
  }
  if (tl === 'bigint' && tr === 'number') return compareNumbers(Number(l), r as number);
  if (tl === 'number' && tr === 'bigint') return compareNumbers(l as number, Number(r));
  return FAIL;
}

const compareNumbers = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : a === b ? 0 : NaN);

/** CEL ints for small sizes, made once: `size(x) > 0` on every event would otherwise allocate a BigInt each time. */
const SMALL_INTS = Array.from({ length: 1024 }, (_, i) => BigInt(i));
const sizeInt = (n: number): bigint => SMALL_INTS[n] ?? BigInt(n);

/** A surrogate pair: a string without one has as many code points as UTF-16 units (the usual case, tested natively). */
const SURROGATE_PAIR = /[\uD800-\uDBFF][\uDC00-\uDFFF]/;

/** size() as a JS number: a string's code points, a list's elements, a map's entries; FAIL on anything else. */
function count(v: unknown): number | typeof FAIL {
  if (typeof v === 'string') {
    if (!SURROGATE_PAIR.test(v)) return v.length;
    let n = v.length;
    for (let i = 0; i < v.length - 1; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = v.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          n--;
          i++;
        }
      }
    }
    return n;
  }
  if (typeof v !== 'object' || v === null) return FAIL;
  if (Array.isArray(v)) return v.length;
  return isPlainMap(v) ? Object.keys(v).length : FAIL;
}

/** size(): the count as a CEL int. */
function size(v: unknown): bigint | typeof FAIL {
  const n = count(v);
  return n === FAIL ? FAIL : sizeInt(n);
}

/** `x in list` and `key in map` (a map holds a key whose value is neither null nor absent, as NativeMap.has says). */
function contains(container: unknown, x: unknown): boolean | typeof FAIL {
  if (typeof container !== 'object' || container === null) return FAIL;
  if (Array.isArray(container)) {
    for (const element of container as unknown[]) {
      if (!celable(element)) return FAIL;
      const same = equal(element, x);
      if (same !== false) return same;
    }
    return false;
  }
  if (!isPlainMap(container)) return FAIL;
  switch (typeof x) {
    case 'string': {
      if (!Object.hasOwn(container, x)) return false;
      const value = container[x];
      if (value === undefined || value === null) return false;
      return celable(value) ? true : FAIL;
    }
    case 'number':
    case 'bigint':
    case 'boolean':
      // A plain object's keys are strings; CEL looks numbers and bools up as such.
      return false;
    default:
      return FAIL;
  }
}

function arithmetic(op: string, l: unknown, r: unknown): unknown {
  const tl = typeof l;
  if (tl !== typeof r) return FAIL;
  if (tl === 'bigint') {
    const a = l as bigint;
    const b = r as bigint;
    switch (op) {
      case '_+_':
        return int(a + b);
      case '_-_':
        return int(a - b);
      case '_*_':
        return int(a * b);
      case '_/_':
        return b === 0n ? FAIL : int(a / b);
      case '_%_':
        return b === 0n ? FAIL : a % b;
    }
    return FAIL;
  }
  if (tl === 'number') {
    const a = l as number;
    const b = r as number;
    switch (op) {
      case '_+_':
        return a + b;
      case '_-_':
        return a - b;
      case '_*_':
        return a * b;
      case '_/_':
        return a / b;
    }
    return FAIL;
  }
  if (op === '_+_') {
    if (tl === 'string') return (l as string) + (r as string);
    if (Array.isArray(l) && Array.isArray(r)) return l.concat(r);
  }
  return FAIL;
}

/**
 * A node @bufbuild/cel planned on its own: its scalar result; a list or map as
 * FAIL; an error thrown on, since it may be one CEL throws rather than returns
 * (the sub-program catches both alike) and `&&` must not absorb it.
 */
const SCALAR_FALLBACK = (v: unknown): unknown => {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return v;
    default:
      if (v === null) return null;
      if (isCelError(v)) throw UNDECIDED;
      return FAIL;
  }
};

/**
 * CEL's `&&` (decisive false) and `||` (decisive true): the decisive value wins even over an operand that failed
 * (commutative, as cel-spec asks); otherwise a failed operand fails the whole.
 */
function logical(args: readonly Compiled[], decisive: boolean): Compiled {
  return (x) => {
    let failed = false;
    for (const f of args) {
      const v = f(x);
      if (v === decisive) return decisive;
      if (v !== !decisive) failed = true;
    }
    return failed ? FAIL : !decisive;
  };
}

/** A qualified name (`a.b.c`) for a select chain on an identifier, as the planner looks functions up. */
export function qualifiedName(node: Expr): string | undefined {
  const kind = node.exprKind;
  if (kind.case === 'identExpr') return kind.value.name;
  if (kind.case === 'selectExpr' && !kind.value.testOnly && kind.value.operand) {
    const parent = qualifiedName(kind.value.operand);
    return parent === undefined ? undefined : `${parent}.${kind.value.field}`;
  }
  return undefined;
}

/**
 * The helpers the closures run on, for generated code (cel-codegen.ts) to call: it must decide exactly as the
 * closures do, so it shares their semantics rather than restating them.
 */
export const RUNTIME = {
  FAIL,
  bound,
  equal,
  compare,
  count,
  sizeInt,
  contains,
  celable,
  isPlainMap,
  undecided: (): never => {
    throw UNDECIDED;
  },
} as const;

/** Compiles `node`; undefined when the node is outside the subset (the caller then plans it with @bufbuild/cel). */
function compileNode(node: Expr, ctx: CompileContext): Compiled | undefined {
  const kind = node.exprKind;
  switch (kind.case) {
    case 'constExpr': {
      const c = kind.value.constantKind;
      switch (c.case) {
        case 'int64Value':
        case 'doubleValue':
        case 'stringValue':
        case 'boolValue': {
          const value = c.value;
          return () => value;
        }
        case 'nullValue':
          return () => null;
        default:
          return undefined;
      }
    }
    case 'identExpr': {
      const name = kind.value.name;
      // An unbound name may be a type (`int`) or an error: @bufbuild/cel decides.
      return (b) => bound(b[name]);
    }
    case 'selectExpr': {
      const { operand, field, testOnly } = kind.value;
      if (!operand) return undefined;
      const of = compile(operand, ctx);
      if (testOnly) {
        return (b) => {
          const v = of(b);
          if (v === FAIL) return FAIL;
          if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
          if (!isPlainMap(v)) throw UNDECIDED;
          if (!Object.hasOwn(v, field)) return false;
          const value = v[field];
          if (value === undefined || value === null) return false;
          if (celable(value)) return true;
          throw UNDECIDED;
        };
      }
      return (b) => {
        const v = of(b);
        // A field of anything but a map (a string, a list, null) is CEL's "field not found" too.
        if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, field)) return FAIL;
        return bound((v as Record<string, unknown>)[field]);
      };
    }
    case 'listExpr': {
      if (kind.value.optionalIndices.length > 0) return undefined;
      const elements = kind.value.elements.map((e) => compile(e, ctx));
      const constants = kind.value.elements.every((e) => e.exprKind.case === 'constExpr') ? elements.map((f) => f({})) : undefined;
      if (constants !== undefined) {
        // A list of literals, built once: `x in ['EUR', 'USD']` is a set look-up when every literal is a string.
        if (constants.every((c) => typeof c === 'string')) {
          const set = new Set(constants as string[]);
          const list = Object.freeze(constants);
          const fn: Compiled & { stringSet?: Set<string> } = () => list;
          fn.stringSet = set;
          return fn;
        }
        const list = Object.freeze(constants);
        return () => list;
      }
      return (b) => {
        const out: unknown[] = new Array(elements.length);
        for (let i = 0; i < elements.length; i++) {
          const v = elements[i]!(b);
          if (v === FAIL) return FAIL;
          out[i] = v;
        }
        return out;
      };
    }
    case 'callExpr':
      return compileCall(kind.value, ctx);
    default:
      return undefined;
  }
}

interface Call {
  target?: Expr;
  function: string;
  args: Expr[];
}

function compileCall(call: Call, ctx: CompileContext): Compiled | undefined {
  const name = call.function;
  if (call.target !== undefined) {
    const qualified = qualifiedName(call.target);
    if (qualified !== undefined && ctx.hasFunction(`${qualified}.${name}`)) return undefined;
  }
  const args = call.args.map((a) => compile(a, ctx));
  const target = call.target === undefined ? undefined : compile(call.target, ctx);
  const [a, b] = args;
  switch (name) {
    case '_&&_':
      return logical(args, false);
    case '_||_':
      return logical(args, true);
    case '_?_:_': {
      const [c, t, f] = args as [Compiled, Compiled, Compiled];
      return (x) => {
        const v = c(x);
        return v === true ? t(x) : v === false ? f(x) : FAIL;
      };
    }
    case '!_':
      return (x) => {
        const v = a!(x);
        return typeof v === 'boolean' ? !v : FAIL;
      };
    case '-_':
      return (x) => {
        const v = a!(x);
        return typeof v === 'number' ? -v : typeof v === 'bigint' ? int(-v) : FAIL;
      };
    case '_==_':
    case '_!=_': {
      const negate = name === '_!=_';
      return (x) => {
        const l = a!(x);
        if (l === FAIL) return FAIL;
        const r = b!(x);
        if (r === FAIL) return FAIL;
        const same = equal(l, r);
        return same === FAIL ? FAIL : negate ? !same : same;
      };
    }
    case '_<_':
    case '_<=_':
    case '_>_':
    case '_>=_': {
      const test = name === '_<_' ? (c: number) => c < 0 : name === '_<=_' ? (c: number) => c <= 0 : name === '_>_' ? (c: number) => c > 0 : (c: number) => c >= 0;
      return (x) => {
        const l = a!(x);
        if (l === FAIL) return FAIL;
        const r = b!(x);
        if (r === FAIL) return FAIL;
        const c = compare(l, r);
        return c === FAIL ? FAIL : test(c);
      };
    }
    case '_+_':
    case '_-_':
    case '_*_':
    case '_/_':
    case '_%_':
      return (x) => {
        const l = a!(x);
        if (l === FAIL) return FAIL;
        const r = b!(x);
        if (r === FAIL) return FAIL;
        return arithmetic(name, l, r);
      };
    case '@in': {
      const set = (b as Compiled & { stringSet?: Set<string> }).stringSet;
      if (set !== undefined)
        return (x) => {
          const v = a!(x);
          // A string against string literals: equal only to an identical string; any other CEL value is unequal to every string.
          return v === FAIL ? FAIL : typeof v === 'string' ? set.has(v) : false;
        };
      return (x) => {
        const v = a!(x);
        if (v === FAIL) return FAIL;
        const container = b!(x);
        return container === FAIL ? FAIL : contains(container, v);
      };
    }
    case '_[_]':
      return (x) => {
        const container = a!(x);
        if (container === FAIL) return FAIL;
        const key = b!(x);
        if (key === FAIL) return FAIL;
        if (Array.isArray(container) && typeof key === 'bigint') {
          if (key < 0n || key >= BigInt(container.length)) return FAIL;
          const element = container[Number(key)] as unknown;
          // A hole is no "not found" for CEL: converting undefined throws.
          if (element === undefined) throw UNDECIDED;
          return bound(element);
        }
        if (typeof container === 'object' && container !== null && !Array.isArray(container)) {
          if (typeof key === 'string') return Object.hasOwn(container, key) ? bound((container as Record<string, unknown>)[key]) : FAIL;
          // A plain object's keys are strings: CEL finds no int, double or bool key in it.
          if (typeof key === 'bigint' || typeof key === 'number' || typeof key === 'boolean') return FAIL;
        }
        // Lists indexed by doubles or strings, strings, nulls: left to CEL.
        throw UNDECIDED;
      };
    case 'size': {
      const of = target ?? (args.length === 1 ? a : undefined);
      if (of === undefined || args.length !== (target ? 0 : 1)) return undefined;
      return (x) => {
        const v = of(x);
        return v === FAIL ? FAIL : size(v);
      };
    }
    case 'contains':
    case 'startsWith':
    case 'endsWith': {
      if (target === undefined || args.length !== 1) return undefined;
      const method = name === 'contains' ? String.prototype.includes : name === 'startsWith' ? String.prototype.startsWith : String.prototype.endsWith;
      return (x) => {
        const s = target(x);
        if (s === FAIL) return FAIL;
        const arg = a!(x);
        return typeof s === 'string' && typeof arg === 'string' ? method.call(s, arg) : FAIL;
      };
    }
    case 'matches': {
      if (target === undefined || args.length !== 1) return undefined;
      const literal = call.args[0]!.exprKind;
      let fixed: { test(text: string): boolean } | undefined;
      if (literal.case === 'constExpr' && literal.value.constantKind.case === 'stringValue') {
        try {
          fixed = ctx.regex(literal.value.constantKind.value);
        } catch {
          // An invalid pattern: CEL's error, at run time.
        }
      }
      return (x) => {
        const s = target(x);
        if (s === FAIL) return FAIL;
        const pattern = a!(x);
        if (typeof s !== 'string' || typeof pattern !== 'string') return FAIL;
        try {
          return (fixed ?? ctx.regex(pattern)).test(s);
        } catch {
          return FAIL;
        }
      };
    }
    default:
      return undefined;
  }
}

/** The node's closure, or @bufbuild/cel's program for it when it is outside the subset (its result used when a scalar). */
function compile(node: Expr, ctx: CompileContext): Compiled {
  const fast = compileNode(node, ctx);
  if (fast !== undefined) return fast;
  const run = ctx.fallback(node);
  return (b) => SCALAR_FALLBACK(run(b));
}

/**
 * The closure for a whole expression; undefined when its root is outside the
 * subset (then @bufbuild/cel alone runs it). The closure's result is FAIL or
 * the raw value (BigInts for ints, the bound arrays and objects as they are);
 * it throws when only @bufbuild/cel can say.
 */
export function compileFast(root: Expr, ctx: CompileContext): Compiled | undefined {
  return compileNode(root, ctx);
}
