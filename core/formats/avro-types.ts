import avro, { type Schema, type Type } from 'avsc';
import { HEADER_SIZE, MAGIC_BYTE } from '../wire-format.ts';
import { SchemaResolutionError, ValidationError, type FieldViolation } from '../errors.ts';

/**
 * Avro types for Sluice's data path.
 *
 * Each schema gets two avsc types: `fast`, whose longs are JS numbers (avsc's
 * default, which refuses anything beyond 2^53 rather than round it), and `wide`,
 * whose longs are a number when exact and a BigInt otherwise. Encoding and
 * decoding try `fast` first and fall back to `wide` only for the rare value
 * that needs it, so 64-bit longs are never rounded and never slow the common case.
 */

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_LONG = -(2n ** 63n);
const MAX_LONG = 2n ** 63n - 1n;

const wideLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => {
    const n = buf.readBigInt64LE();
    return n >= MIN_SAFE && n <= MAX_SAFE ? Number(n) : n;
  },
  toBuffer: (n: number | bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown) => (typeof v === 'string' ? BigInt(v) : v),
  toJSON: (n: number | bigint) => (typeof n === 'bigint' ? n.toString() : n),
  isValid: (n: unknown) => (typeof n === 'number' && Number.isSafeInteger(n)) || (typeof n === 'bigint' && n >= MIN_LONG && n <= MAX_LONG),
  compare: (a: number | bigint, b: number | bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * timestamp-millis that accepts epoch milliseconds or an ISO-8601 string on the
 * way in, and always gives epoch milliseconds on the way out (the Avro JSON form).
 */
class TimestampMillis extends avro.types.LogicalType {
  override _fromValue(value: unknown): unknown {
    return value;
  }
  override _toValue(value: unknown): unknown {
    if (typeof value === 'string' && ISO_DATE_TIME.test(value)) {
      const ms = Date.parse(value);
      return Number.isNaN(ms) ? undefined : ms;
    }
    // Any other string is invalid; undefined makes avsc blame this logical type, not "long".
    if (typeof value === 'string') return undefined;
    if (value instanceof Date) return value.getTime();
    return value;
  }
  override _resolve(type: Type): ((value: unknown) => unknown) | undefined {
    const name = type.typeName;
    if (name === 'long' || name === 'int' || name === 'abstract:long' || name === 'logical:timestamp-millis') return (v) => v;
    return undefined;
  }
}

export interface AvroTypes {
  readonly schema: Schema;
  readonly fast: Type;
  readonly wide: Type;
  /** Whether a value may need the wide type: decoded by `fast` it may have lost a long's exactness (see decodeExact), or it holds a long `fast` cannot write exactly; compiled from the schema. */
  readonly mayNeedWide: (value: unknown) => boolean;
}

/**
 * avsc's int check is `val === (val | 0)`, which throws "Cannot mix BigInt and
 * other types" for the BigInt an integer beyond 2^53 parses to; this one says
 * invalid instead, so the field is named in a 400 rather than failing the request.
 */
class CheckedIntType extends avro.types.IntType {
  _check(value: unknown, flags: unknown, hook?: (value: unknown, type: Type) => void): boolean {
    const ok = typeof value === 'number' && value === (value | 0);
    if (!ok && hook) hook(value, this);
    return ok;
  }
}
const checkedInt = new CheckedIntType();

/**
 * A JS string may hold a lone surrogate (JSON's "\ud800" escape makes one), which
 * UTF-8 cannot represent: encoding would silently write U+FFFD instead. Such a
 * string is invalid here, so the caller hears about it.
 */
class CheckedStringType extends avro.types.StringType {
  _check(value: unknown, flags: unknown, hook?: (value: unknown, type: Type) => void): boolean {
    const ok = typeof value === 'string' && value.isWellFormed();
    if (!ok && hook) hook(value, this);
    return ok;
  }
}
const checkedString = new CheckedStringType();

function plainPrimitive(schema: unknown, name: 'int' | 'string'): boolean {
  if (schema === name) return true;
  const s = schema as { type?: unknown; logicalType?: unknown } | null;
  return typeof s === 'object' && s !== null && s.type === name && s.logicalType === undefined;
}

function checkedPrimitive(schema: unknown): Type | undefined {
  if (plainPrimitive(schema, 'int')) return checkedInt;
  if (plainPrimitive(schema, 'string')) return checkedString;
  return undefined;
}

/**
 * avsc looks record fields and enum symbols up in plain objects, so a key such
 * as `constructor`, `toString` or `__proto__` finds Object.prototype's member and
 * passes as declared: an unknown field would be dropped silently, an enum symbol
 * accepted that has no index. Objects without a prototype make them unknown.
 */
function withoutPrototypeLookups(type: Type, seen = new Set<Type>()): void {
  if (seen.has(type)) return;
  seen.add(type);
  const t = type as Type & {
    _fieldsByName?: Record<string, unknown>;
    _indices?: Record<string, unknown>;
    fields?: { type: Type }[];
    types?: Type[];
    itemsType?: Type;
    valuesType?: Type;
    underlyingType?: Type;
  };
  // avsc freezes its types, but not these look-up tables.
  if (t._fieldsByName) Object.setPrototypeOf(t._fieldsByName, null);
  if (t._indices) Object.setPrototypeOf(t._indices, null);
  const children = [...(t.fields ?? []).map((f) => f.type), ...(t.types ?? []), t.itemsType, t.valuesType, t.underlyingType];
  for (const child of children) if (child) withoutPrototypeLookups(child, seen);
}

/**
 * `references` are the schemas holding named types this one uses (a shared
 * `Money` record, say), dependencies first: they are parsed into the same
 * avsc registry, so the main schema can name their types.
 */
function build(schema: Schema, wide: boolean, references: readonly Schema[]): Type {
  const opts = {
    logicalTypes: { 'timestamp-millis': TimestampMillis },
    // The wide type validates (see validateAvro), so it is the one that must not throw on a BigInt.
    registry: (wide ? { long: wideLong } : {}) as { [name: string]: Type },
    ...(wide ? { typeHook: checkedPrimitive } : {}),
    // Unions of null and one type take the plain value (as JSON posters write it).
    wrapUnions: 'auto' as const,
  } as Parameters<typeof avro.Type.forSchema>[1];
  for (const reference of references) withoutPrototypeLookups(avro.Type.forSchema(reference, opts));
  const type = avro.Type.forSchema(schema, opts);
  withoutPrototypeLookups(type);
  return type;
}

export function parseSchemaText(text: string): Schema {
  return JSON.parse(text) as Schema;
}

export function createTypes(schema: Schema | string, references: readonly (Schema | string)[] = []): AvroTypes {
  const parsed = typeof schema === 'string' ? parseSchemaText(schema) : schema;
  const refs = references.map((r) => (typeof r === 'string' ? parseSchemaText(r) : r));
  const fast = build(parsed, false, refs);
  return { schema: parsed, fast, wide: build(parsed, true, refs), mayNeedWide: wideCheck(fast) ?? never };
}

const never = (): boolean => false;

type Check = (value: unknown) => boolean;

/**
 * needsWide for values of `type` that looks only where a long can be: a
 * record's long fields, an array's or map's items when they hold longs.
 * Undefined when the type holds no long at all (then fast decoding and
 * encoding are always exact). Unions and recursive types that hold a long fall back to walking
 * the value with needsWide.
 */
function wideCheck(type: Type, visiting = new Set<Type>()): Check | undefined {
  const t = type as Type & { typeName: string; fields?: { name: string; type: Type }[]; itemsType?: Type; valuesType?: Type; types?: Type[]; underlyingType?: Type };
  if (t.typeName === 'long' || t.typeName === 'abstract:long') return needsWide;
  if (t.underlyingType) return wideCheck(t.underlyingType, visiting);
  if (visiting.has(type)) return holdsLong(type) ? needsWide : undefined;
  visiting.add(type);
  try {
    if (t.typeName === 'record' || t.typeName === 'error') {
      const checks = (t.fields ?? []).flatMap((f) => {
        const check = wideCheck(f.type, visiting);
        return check ? [[f.name, check] as const] : [];
      });
      if (checks.length === 0) return undefined;
      return (value) => {
        if (value === null || typeof value !== 'object') return false;
        for (const [name, check] of checks) if (check((value as Record<string, unknown>)[name])) return true;
        return false;
      };
    }
    if (t.typeName === 'array' && t.itemsType) {
      const check = wideCheck(t.itemsType, visiting);
      return check && ((value) => Array.isArray(value) && value.some(check));
    }
    if (t.typeName === 'map' && t.valuesType) {
      const check = wideCheck(t.valuesType, visiting);
      return check && ((value) => value !== null && typeof value === 'object' && Object.values(value).some(check));
    }
    if (t.types) return t.types.some((branch) => wideCheck(branch, visiting) !== undefined) ? needsWide : undefined;
    return undefined;
  } finally {
    visiting.delete(type);
  }
}

/** Whether a (possibly recursive) type holds a long anywhere. */
function holdsLong(type: Type, seen = new Set<Type>()): boolean {
  if (seen.has(type)) return false;
  seen.add(type);
  const t = type as Type & { typeName: string; fields?: { type: Type }[]; itemsType?: Type; valuesType?: Type; types?: Type[]; underlyingType?: Type };
  if (t.typeName === 'long' || t.typeName === 'abstract:long') return true;
  const children = [...(t.fields ?? []).map((f) => f.type), ...(t.types ?? []), t.itemsType, t.valuesType, t.underlyingType];
  return children.some((child) => child !== undefined && holdsLong(child, seen));
}

function isPrecisionError(error: unknown): boolean {
  return error instanceof Error && /precision loss|invalid "long"|invalid "abstract:long"/.test(error.message);
}

/**
 * avsc's number longs zigzag-encode in doubles: a negative long below -2^52 has an
 * odd zigzag value above 2^53, which a double cannot hold, so it is silently
 * written or read as a different number (with the wrong sign) instead of failing.
 * Integers at or beyond 2^52 in magnitude (and BigInts) therefore take the wide type.
 */
const FAST_LONG_LIMIT = 2 ** 52;

function needsWide(value: unknown): boolean {
  if (typeof value === 'number') return Math.abs(value) >= FAST_LONG_LIMIT && Number.isInteger(value);
  if (typeof value === 'bigint') return true;
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (needsWide(item)) return true;
    return false;
  }
  for (const key in value) if (needsWide((value as Record<string, unknown>)[key])) return true;
  return false;
}

export function encodeAvro(types: AvroTypes, value: unknown): Buffer {
  return encodeAvroAt(types, value, 0, NO_PREFIX);
}

/**
 * `value` in the Confluent wire format (magic byte, schema id, Avro body) in one Buffer. avsc's toBuffer
 * zero-fills a fresh unpooled Buffer per value, which framing then copied again: here the body is written
 * once into a kept scratch buffer behind its header and copied out once, into Node's pooled small-Buffer slab.
 */
export function encodeAvroFramed(types: AvroTypes, schemaId: number, value: unknown): Buffer {
  return encodeAvroAt(types, value, HEADER_SIZE, schemaId);
}

const NO_PREFIX = -1;
let scratch = Buffer.allocUnsafe(64 * 1024);

function encodeAvroAt(types: AvroTypes, value: unknown, start: number, schemaId: number): Buffer {
  // Only a long field can need the wide type, so only the schema's long fields are looked at (see wideCheck).
  if (types.mayNeedWide(value)) return writeOut(types.wide, value, start, schemaId);
  try {
    return writeOut(types.fast, value, start, schemaId);
  } catch (error) {
    if (!isPrecisionError(error)) throw error;
    return writeOut(types.wide, value, start, schemaId);
  }
}

function writeOut(type: Type, value: unknown, start: number, schemaId: number): Buffer {
  let end = type.encode(value, scratch, start);
  if (end < 0) {
    // A negative answer is the number of bytes missing: grow once to fit and write again.
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + 1024));
    end = type.encode(value, scratch, start);
  }
  if (schemaId !== NO_PREFIX) {
    scratch[0] = MAGIC_BYTE;
    scratch.writeUInt32BE(schemaId, 1);
  }
  const out = Buffer.allocUnsafe(end);
  scratch.copy(out, 0, 0, end);
  return out;
}

/** Decodes with `fast`, and again with `wide` when the result may have lost a long's exactness. */
function decodeExact(fast: Type, wide: Type, payload: Buffer, mayNeedWide: Check, fastResolver?: unknown, wideResolver?: unknown): unknown {
  let value: unknown;
  try {
    value = fast.fromBuffer(payload, fastResolver as never);
  } catch (error) {
    if (!isPrecisionError(error)) throw error;
    return wide.fromBuffer(payload, wideResolver as never);
  }
  return mayNeedWide(value) ? wide.fromBuffer(payload, wideResolver as never) : value;
}

/** Formats avsc's error-hook path (`['items', 2, 'sku']`) as `items[2].sku`. */
export function formatPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number' || /^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function describeType(type: Type): string {
  const t = type as Type & { symbols?: string[]; typeName: string; types?: Type[]; name?: string };
  if (t.typeName === 'enum' && t.symbols) return `one of ${t.symbols.map((s) => JSON.stringify(s)).join(', ')}`;
  if (t.typeName === 'union' && t.types) return `one of (${t.types.map(describeType).join(' | ')})`;
  if (t.typeName === 'abstract:long') return 'long';
  if (t.typeName.startsWith('logical:timestamp')) return 'timestamp (epoch milliseconds or ISO-8601 string)';
  if (t.typeName === 'record' || t.typeName === 'error') return `record ${t.name ?? ''}`.trim();
  return t.typeName;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string' && !value.isWellFormed()) return 'a string with a lone UTF-16 surrogate (not representable in UTF-8)';
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Every way `value` breaks the schema, each with the path of the field, or an
 * empty list. Undeclared fields are violations too: a typo in a field name
 * would otherwise drop data silently.
 */
export function validateAvro(types: AvroTypes, value: unknown): FieldViolation[] {
  // The common case, a valid event, costs one check without the hooks' path bookkeeping;
  // only an invalid one pays for the two passes that name every violation.
  if (types.wide.isValid(value, { noUndeclaredFields: true })) return [];
  const violations: FieldViolation[] = [];
  types.wide.isValid(value, {
    errorHook: (path: string[], any: unknown, type: Type) => {
      const message = any === undefined ? `required field is missing (expected ${describeType(type)})` : `expected ${describeType(type)}, got ${describeValue(any)}`;
      violations.push({ path: formatPath(path), message });
    },
  });
  // avsc reports a record with undeclared fields instead of looking inside it, so
  // undeclared fields get a pass of their own after the type errors are known.
  types.wide.isValid(value, {
    noUndeclaredFields: true,
    errorHook: (path: string[], any: unknown, type: Type) => {
      const t = type as Type & { typeName: string; fields?: { name: string }[] };
      if ((t.typeName !== 'record' && t.typeName !== 'error') || any === null || typeof any !== 'object' || Array.isArray(any)) return;
      const declared = new Set((t.fields ?? []).map((f) => f.name));
      for (const name of Object.keys(any)) {
        if (!declared.has(name)) {
          violations.push({ path: formatPath([...path, name]), message: `unknown field (not in schema ${describeType(type)})` });
        }
      }
    },
  });
  return violations;
}

/** Validates and encodes in one step; throws ValidationError naming every bad field. */
export function encodeValidated(types: AvroTypes, value: unknown): Buffer {
  const violations = validateAvro(types, value);
  if (violations.length > 0) throw new ValidationError(violations);
  return encodeAvro(types, value);
}

export interface Decoder {
  decode(payload: Buffer): unknown;
}

/**
 * A decoder for data written with `writer` and read as `reader`, applying the
 * Avro specification's resolution rules (promotions, defaults, aliases...).
 */
export function createResolvingDecoder(writer: AvroTypes, reader: AvroTypes = writer): Decoder {
  // Same schema: no resolver, which avsc would otherwise consult field by field.
  if (writer === reader) return { decode: (payload) => decodeExact(writer.fast, writer.wide, payload, writer.mayNeedWide) };
  let fast: ReturnType<Type['createResolver']>;
  let wide: ReturnType<Type['createResolver']>;
  try {
    fast = reader.fast.createResolver(writer.fast);
    wide = reader.wide.createResolver(writer.wide);
  } catch (error) {
    throw new SchemaResolutionError(`writer schema cannot be read with the reader schema: ${(error as Error).message}`, error);
  }
  return { decode: (payload) => decodeExact(reader.fast, reader.wide, payload, reader.mayNeedWide, fast, wide) };
}
