import { parse as parseStrictly } from 'lossless-json';

/**
 * JSON that never loses a 64-bit integer. Avro longs reach 2^63 but JS numbers
 * are exact only to 2^53, so integers beyond that are parsed to BigInt (via the
 * reviver's access to the source text) and written back digit for digit.
 */

/** Arrays/objects nested deeper than a bound: refused before JSON.parse, whose time grows with the depth. */
export class JsonTooDeepError extends Error {
  readonly maxDepth: number;
  /** Of the bracket that went one deeper than `maxDepth`, in UTF-8 bytes from the start of the text. */
  readonly byteOffset: number;
  constructor(text: string, offset: number, maxDepth: number) {
    const byteOffset = Buffer.byteLength(text.slice(0, offset));
    super(`is nested more than ${maxDepth} arrays/objects deep (byte offset ${byteOffset})`);
    this.maxDepth = maxDepth;
    this.byteOffset = byteOffset;
  }
}

const QUOTE = 0x22;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PLUS = 0x2b;
const MINUS = 0x2d;
// '[' | 0x20 is '{' and ']' | 0x20 is '}': one comparison each for openers and closers; likewise 'E' | 0x20 is 'e'.
const OPENER = 0x7b;
const CLOSER = 0x7d;
const EXPONENT = 0x65;
/** scan()'s answers other than an offset. */
const FITS = -1;
const FITS_MAYBE_UNSAFE_NUMBER = -2;
const FITS_ESCAPED_KEY = -3;

/**
 * One linear pass over JSON text, before JSON.parse, for the two things that must be known first: where (if
 * anywhere) it opens an array/object more than `maxDepth` deep (the offset), and whether a number may need the
 * reviver (FITS_MAYBE_UNSAFE_NUMBER) or none can (FITS). V8's JSON.parse spends ~0.7 µs per level of nesting
 * (1 MiB of `[` took 0.34 s, and validating it more), so a deep body is refused before it.
 *
 * Only a number of 16 or more integer digits can be an unsafe integer, and only a three-digit exponent a
 * number too large for a double (1e400 parses to Infinity): the reviver is several times slower than a plain
 * parse, so it runs only when such a number is there. Strings are skipped character by character (an escape
 * takes the next character along), so brackets, digits and escapes inside them count for nothing; a string with
 * an escape followed by a colon is an escaped key, which JSON.parse may misread (see strictNumber). indexOf to the
 * closing quote was tried: once other work had run, V8 took 3 s per MiB of short strings through it. On the hot path: no allocation, and about the cost of the regular expression it replaced
 * (bench/json-scan.ts). Invalid JSON may get any verdict here; JSON.parse then refuses it in linear time.
 */
function scan(text: string, maxDepth: number): number {
  let depth = 0;
  let escapedKey = false;
  let digits = 0; // of the integer or exponent part being read
  let exponent = false;
  let maybeUnsafe = false;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x39 && c >= 0x30) {
      if (++digits >= 16 || (exponent && digits >= 3)) maybeUnsafe = true;
      continue;
    }
    if (c === QUOTE) {
      // A string, skipped character by character: an escape takes the character after it along.
      let escaped = false;
      for (i++; i < length; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) {
          escaped = true;
          i++;
        } else if (d === QUOTE) break;
      }
      if (i >= length) return FITS; // unterminated: JSON.parse says so
      if (escaped) {
        let next = i + 1;
        while (next < length && text.charCodeAt(next) <= 0x20) next++;
        if (text.charCodeAt(next) === COLON) escapedKey = true;
      }
    } else if ((c | 0x20) === OPENER) {
      if (++depth > maxDepth) return i;
    } else if ((c | 0x20) === CLOSER) {
      depth--;
    } else if ((c | 0x20) === EXPONENT) {
      digits = 0;
      exponent = true;
      continue;
    } else if (c === DOT) {
      digits = -length; // a fraction's digits never matter: no run of them can reach 16 from here
      continue;
    } else if (c === PLUS || c === MINUS) {
      continue; // a sign leaves the part being read as it is
    }
    digits = 0;
    exponent = false;
  }
  return escapedKey ? FITS_ESCAPED_KEY : maybeUnsafe ? FITS_MAYBE_UNSAFE_NUMBER : FITS;
}

/** Throws JsonTooDeepError if `text` nests arrays/objects more than `maxDepth` deep; linear, allocation-free. */
export function requireJsonDepth(text: string, maxDepth: number): void {
  const verdict = scan(text, maxDepth);
  if (verdict >= 0) throw new JsonTooDeepError(text, verdict, maxDepth);
}

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
  if (typeof value !== 'number' || Number.isSafeInteger(value)) return value;
  const source = context?.source;
  // Marked here, named with its path below: a reviver sees its key but not where it is. Without the source
  // still refused: V8 (Node 24.21) gives none for a value whose key it misread (a key spelled "k\"" read as
  // "k\\" after another parse met "k\\"), and Infinity must not get through that way.
  if (source !== undefined && /^-?\d+$/.test(source)) return BigInt(source);
  if (!Number.isFinite(value)) return { [NON_FINITE]: source ?? String(value) };
  return value;
}

/**
 * Numbers for the strict parser, as reviveNumbers gives them. The strict parser reads texts with an escaped object
 * key: V8's JSON.parse (Node 24.21; nodejs/node#63785, open) can read a key spelled `"k\""` as `k\` once any earlier
 * parse in the process met a key `"k\\"`, which would silently rename an event's field. Such keys are rare, so
 * their texts take the slower, exact path (lossless-json; it also refuses a key given twice with different values).
 */
function strictNumber(source: string): unknown {
  const value = Number(source);
  if (Number.isSafeInteger(value)) return value;
  if (/^-?\d+$/.test(source)) return BigInt(source);
  if (!Number.isFinite(value)) return { [NON_FINITE]: source };
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
 * becoming Infinity (which JSON cannot even write back). Text nesting
 * arrays/objects more than `maxDepth` deep throws JsonTooDeepError unparsed.
 */
export function parseJson(text: string, maxDepth = Infinity): unknown {
  const verdict = scan(text, maxDepth);
  if (verdict >= 0) throw new JsonTooDeepError(text, verdict, maxDepth);
  if (verdict === FITS) return JSON.parse(text);
  const value: unknown = verdict === FITS_ESCAPED_KEY ? parseStrictly(text, null, strictNumber) : JSON.parse(text, reviveNumbers as (key: string, value: unknown) => unknown);
  const nonFinite = findNonFinite(value, '');
  if (nonFinite) throw nonFinite;
  return value;
}

/**
 * JSON.parse for JSON that is not an event (schema texts, request bodies): numbers as doubles, as JSON.parse gives
 * them, but a text with an escaped object key read by the strict parser (see strictNumber), so that a schema's
 * property named `a"b` is not stored as `a\b`. Text nesting arrays/objects more than `maxDepth` deep throws
 * JsonTooDeepError unparsed.
 */
export function parseJsonText(text: string, maxDepth = Infinity): unknown {
  // One pass for both: the depth bound and whether a key is escaped (the scan is ~3 ms per MiB).
  const verdict = scan(text, maxDepth);
  if (verdict >= 0) throw new JsonTooDeepError(text, verdict, maxDepth);
  return verdict === FITS_ESCAPED_KEY ? parseStrictly(text, null, Number) : JSON.parse(text);
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
  if (value === null || typeof value !== 'object') return undefined;
  const stack: { item: object; depth: number }[] = [{ item: value, depth: 1 }];
  // Counted when found, not when visited: an object of 40,000 objects is refused at its 2,001st, not after all.
  let containers = 1;
  while (stack.length > 0) {
    const { item, depth } = stack.pop()!;
    if (depth > maxDepth) return `is nested more than ${maxDepth} arrays/objects deep`;
    // An array by index: `for...in` makes a string of every index (120,000 enum symbols: ~8 ms of 1 MiB's check).
    // An object by `for...in`: Object.values of one with 40,000 keys took 17 ms to the loop's 7.
    if (Array.isArray(item)) {
      for (const child of item as unknown[]) {
        if (child === null || typeof child !== 'object') continue;
        if (++containers > maxContainers) return `holds more than ${maxContainers} arrays/objects`;
        stack.push({ item: child, depth: depth + 1 });
      }
      continue;
    }
    for (const key in item) {
      const child = (item as Record<string, unknown>)[key];
      if (child === null || typeof child !== 'object') continue;
      if (++containers > maxContainers) return `holds more than ${maxContainers} arrays/objects`;
      stack.push({ item: child, depth: depth + 1 });
    }
  }
  return undefined;
}
