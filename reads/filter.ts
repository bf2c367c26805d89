import jsep, { type Expression } from 'jsep';
import { FilterError } from '../core/errors.ts';

/**
 * The --where language: JavaScript-like expressions (`value.amount > 100 &&
 * value.currency == "EUR"`) parsed by jsep and evaluated here over a fixed set
 * of names, so a filter can read a record but never run code, reach globals or
 * walk prototypes.
 */

export interface FilterContext {
  value: unknown;
  key: unknown;
  headers: Record<string, string | null>;
  topic: string;
  partition: number;
  offset: number;
  /** Epoch milliseconds. */
  timestamp: number;
}

export type RecordFilter = (record: FilterContext) => boolean;

const ROOTS: ReadonlySet<string> = new Set(['value', 'key', 'headers', 'topic', 'partition', 'offset', 'timestamp']);
const BLOCKED_PROPERTIES: ReadonlySet<string> = new Set(['__proto__', 'prototype', 'constructor']);
const STRING_METHODS: ReadonlySet<string> = new Set(['startsWith', 'endsWith', 'includes', 'toLowerCase', 'toUpperCase', 'trim']);
const ARRAY_METHODS: ReadonlySet<string> = new Set(['includes']);

type Evaluator = (record: FilterContext) => unknown;

/**
 * Bounds that keep a filter cheap whoever writes it (the console takes them from
 * the network): no loops exist, so evaluation time is bounded by the node count
 * and the size of the values; strings built by `+` are capped so a handful of
 * concatenations of a large field cannot allocate without limit.
 */
export const MAX_EXPRESSION_LENGTH = 1000;
const MAX_NODES = 200;
const MAX_DEPTH = 64;
const MAX_STRING = 64 * 1024;

/** jsep reads every number as a double; integer literals beyond 2^53 become BigInt so long fields compare exactly. */
function literal(node: Expression): unknown {
  const raw = typeof node.raw === 'string' ? node.raw : '';
  if (typeof node.value === 'number' && !Number.isSafeInteger(node.value) && /^\d+$/.test(raw)) return BigInt(raw);
  return node.value;
}

function property(target: unknown, name: unknown): unknown {
  if (target === null || target === undefined) return undefined;
  const key = typeof name === 'number' || typeof name === 'bigint' ? String(name) : name;
  if (typeof key !== 'string' || BLOCKED_PROPERTIES.has(key)) return undefined;
  if (typeof target === 'string' && key === 'length') return target.length;
  if (typeof target !== 'object') return undefined;
  if (Array.isArray(target) && key === 'length') return target.length;
  return Object.hasOwn(target, key) ? (target as Record<string, unknown>)[key] : undefined;
}

/** Mixed BigInt/number arithmetic throws in JS; a filter wants the number. */
function numeric(a: unknown, b: unknown): [number, number] | [bigint, bigint] | undefined {
  if (typeof a === 'bigint' && typeof b === 'bigint') return [a, b];
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) return [Number(a), Number(b)];
  return undefined;
}

function equal(a: unknown, b: unknown): boolean {
  // A missing field reads as null, as it does in the JSON a user sees.
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  // BigInt == number compares exactly; everything else is strict.
  if ((typeof a === 'bigint' && typeof b === 'number') || (typeof a === 'number' && typeof b === 'bigint')) return a == b;
  return a === b;
}

function compare(op: string, a: unknown, b: unknown): boolean {
  const comparable = (v: unknown) => typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string';
  if (!comparable(a) || !comparable(b) || (typeof a === 'string') !== (typeof b === 'string')) return false;
  const x = a as number | bigint | string;
  const y = b as number | bigint | string;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    default:
      return x >= y;
  }
}

function arithmetic(op: string, a: unknown, b: unknown): unknown {
  if (op === '+' && (typeof a === 'string' || typeof b === 'string')) {
    const joined = `${String(a)}${String(b)}`;
    return joined.length > MAX_STRING ? undefined : joined;
  }
  const pair = numeric(a, b);
  if (!pair) return undefined;
  if (typeof pair[0] === 'bigint') {
    const [x, y] = pair as [bigint, bigint];
    if ((op === '/' || op === '%') && y === 0n) return undefined;
    return op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? x / y : x % y;
  }
  const [x, y] = pair as [number, number];
  return op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? x / y : x % y;
}

interface Budget {
  nodes: number;
}

function compile(node: Expression, source: string, budget: Budget = { nodes: 0 }, depth = 0): Evaluator {
  budget.nodes += 1;
  if (budget.nodes > MAX_NODES) throw new FilterError(source, `more than ${MAX_NODES} terms`);
  if (depth > MAX_DEPTH) throw new FilterError(source, `nested more than ${MAX_DEPTH} deep`);
  const sub = (child: Expression): Evaluator => compile(child, source, budget, depth + 1);
  switch (node.type) {
    case 'Literal': {
      const v = literal(node);
      return () => v;
    }
    case 'Identifier': {
      const name = node.name as string;
      if (name === 'true' || name === 'false') return name === 'true' ? () => true : () => false;
      if (name === 'null') return () => null;
      if (!ROOTS.has(name)) throw new FilterError(source, `unknown name "${name}" (use ${[...ROOTS].join(', ')})`);
      return (record) => record[name as keyof FilterContext];
    }
    case 'MemberExpression': {
      const object = sub(node.object as Expression);
      const prop = node.property as Expression;
      if (!node.computed) {
        const name = prop.name as string;
        return (record) => property(object(record), name);
      }
      const computed = sub(prop);
      return (record) => property(object(record), computed(record));
    }
    case 'ArrayExpression': {
      const elements = (node.elements as (Expression | null)[]).map((e) => (e ? sub(e) : () => undefined));
      return (record) => elements.map((e) => e(record));
    }
    case 'UnaryExpression': {
      const argument = sub(node.argument as Expression);
      switch (node.operator) {
        case '!':
          return (record) => !argument(record);
        case '-':
          return (record) => {
            const v = argument(record);
            return typeof v === 'number' || typeof v === 'bigint' ? -v : undefined;
          };
        case '+':
          return (record) => argument(record);
        default:
          throw new FilterError(source, `operator ${String(node.operator)} is not supported`);
      }
    }
    case 'BinaryExpression':
    case 'LogicalExpression': {
      const op = node.operator as string;
      const left = sub(node.left as Expression);
      const right = sub(node.right as Expression);
      switch (op) {
        case '&&':
          return (record) => Boolean(left(record)) && Boolean(right(record));
        case '||':
          return (record) => Boolean(left(record)) || Boolean(right(record));
        case '==':
        case '===':
          return (record) => equal(left(record), right(record));
        case '!=':
        case '!==':
          return (record) => !equal(left(record), right(record));
        case '<':
        case '<=':
        case '>':
        case '>=':
          return (record) => compare(op, left(record), right(record));
        case '+':
        case '-':
        case '*':
        case '/':
        case '%':
          return (record) => arithmetic(op, left(record), right(record));
        default:
          throw new FilterError(source, `operator ${op} is not supported`);
      }
    }
    case 'CallExpression': {
      const callee = node.callee as Expression;
      if (callee.type !== 'MemberExpression' || callee.computed) {
        throw new FilterError(source, 'only the methods startsWith, endsWith, includes, toLowerCase, toUpperCase and trim can be called');
      }
      const method = (callee.property as Expression).name as string;
      if (!STRING_METHODS.has(method)) throw new FilterError(source, `method ${method}() is not supported`);
      const target = sub(callee.object as Expression);
      const args = (node.arguments as Expression[]).map(sub);
      return (record) => {
        const t = target(record);
        const values = args.map((a) => a(record));
        if (typeof t === 'string') {
          if (method === 'toLowerCase' || method === 'toUpperCase' || method === 'trim') return t[method]();
          const [arg] = values;
          return typeof arg === 'string' ? t[method as 'startsWith' | 'endsWith' | 'includes'](arg) : false;
        }
        if (Array.isArray(t) && ARRAY_METHODS.has(method)) return t.some((item) => equal(item, values[0]));
        return undefined;
      };
    }
    case 'Compound':
      throw new FilterError(source, 'expected one expression');
    default:
      throw new FilterError(source, `${node.type} is not supported`);
  }
}

/** Compiles a --where expression once; throws FilterError (with jsep's position) when it is not valid. */
export function compileFilter(expression: string): RecordFilter {
  // Checked before parsing: jsep recurses, and a deep enough nesting would exhaust the stack.
  if (expression.length > MAX_EXPRESSION_LENGTH) throw new FilterError(expression.slice(0, 40) + '…', `longer than ${MAX_EXPRESSION_LENGTH} characters`);
  let ast: Expression;
  try {
    ast = jsep(expression);
  } catch (error) {
    throw new FilterError(expression, (error as Error).message);
  }
  const evaluate = compile(ast, expression);
  return (record) => Boolean(evaluate(record));
}
