/**
 * JSON that never loses a 64-bit integer. Avro longs reach 2^63 but JS numbers
 * are exact only to 2^53, so integers beyond that are parsed to BigInt (via the
 * reviver's access to the source text) and written back digit for digit.
 */

// Only a number of 16 or more integer digits can be an unsafe integer, and only that or a
// three-digit exponent a number too large for a double (1e400 parses to Infinity). The reviver
// is several times slower than a plain parse, so it runs only when such a number may be there.
// A JSON number starts the text or follows '[', ':' or ',' (and whitespace): matching only
// there keeps ids inside strings ("3e456a1b", long digit runs) off the slow path, which every
// batch of UUID-keyed events took before. Inside a string the pattern can still match (":1e999"):
// that costs a slower parse, never a wrong one. Linear: each start is a distinct delimiter.
const MAYBE_UNSAFE_NUMBER = /(?:^|[[:,])\s*-?(?:\d{16,}|\d+(?:\.\d+)?[eE][+-]?\d{3})/;

/** A JSON number that a double cannot hold (JSON.parse would turn it into Infinity). */
export class NonFiniteNumberError extends Error {
  readonly path: string;
  readonly source: string;
  constructor(path: string, source: string) {
    super(`${path || '(root)'}: number ${source.length > 40 ? `${source.slice(0, 40)}…` : source} is too large for a double`);
    this.path = path;
    this.source = source;
  }
}

interface ReviverContext {
  source?: string;
}

const NON_FINITE = Symbol('non-finite number');

function reviveNumbers(this: unknown, _key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value !== 'number' || Number.isSafeInteger(value) || context?.source === undefined) return value;
  if (/^-?\d+$/.test(context.source)) return BigInt(context.source);
  // Marked here, named with its path below: a reviver sees its key but not where it is.
  if (!Number.isFinite(value)) return { [NON_FINITE]: context.source };
  return value;
}

function findNonFinite(value: unknown, path: string): NonFiniteNumberError | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const source = (value as Record<symbol, unknown>)[NON_FINITE];
  if (typeof source === 'string') return new NonFiniteNumberError(path, source);
  for (const [key, item] of Object.entries(value)) {
    const found = findNonFinite(item, Array.isArray(value) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

/**
 * JSON.parse, with integers beyond 2^53 as exact BigInts; a number too large
 * for a double throws NonFiniteNumberError naming its path instead of
 * becoming Infinity (which JSON cannot even write back).
 */
export function parseJson(text: string): unknown {
  if (!MAYBE_UNSAFE_NUMBER.test(text)) return JSON.parse(text);
  const value: unknown = JSON.parse(text, reviveNumbers as (key: string, value: unknown) => unknown);
  const nonFinite = findNonFinite(value, '');
  if (nonFinite) throw nonFinite;
  return value;
}

const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

// `this[key]` is the value before Buffer#toJSON ran, so bytes can be told apart from arrays.
function bigintReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return rawJSON(value.toString());
  const original = this[key];
  if (Buffer.isBuffer(original)) return original.toString('base64');
  return value;
}

export function stringifyJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, bigintReplacer, indent);
}

/**
 * Why `value` (parsed JSON) is beyond the bounds, or undefined: nested more than `maxDepth` arrays/objects
 * deep, or holding more than `maxContainers` of them. Iterative, so a deep value cannot overflow the stack;
 * it stops at the first excess. Recursive consumers (schema compilers, key sorting) run only on bounded values.
 */
export function jsonBeyondBounds(value: unknown, maxDepth: number, maxContainers = Infinity): string | undefined {
  const stack: { item: unknown; depth: number }[] = [{ item: value, depth: 1 }];
  let containers = 0;
  while (stack.length > 0) {
    const { item, depth } = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > maxDepth) return `is nested more than ${maxDepth} arrays/objects deep`;
    if (++containers > maxContainers) return `holds more than ${maxContainers} arrays/objects`;
    for (const child of Object.values(item)) if (child !== null && typeof child === 'object') stack.push({ item: child, depth: depth + 1 });
  }
  return undefined;
}
