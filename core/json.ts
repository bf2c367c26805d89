/**
 * JSON that never loses a 64-bit integer. Avro longs reach 2^63 but JS numbers
 * are exact only to 2^53, so integers beyond that are parsed to BigInt (via the
 * reviver's access to the source text) and written back digit for digit.
 */

// Only bodies that contain a long digit run can hold an unsafe integer; the
// reviver is several times slower than a plain parse, so skip it otherwise.
const MAYBE_UNSAFE_INTEGER = /\d{16,}/;

interface ReviverContext {
  source?: string;
}

function reviveBigInts(this: unknown, _key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export function parseJson(text: string): unknown {
  return MAYBE_UNSAFE_INTEGER.test(text) ? JSON.parse(text, reviveBigInts as (key: string, value: unknown) => unknown) : JSON.parse(text);
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
