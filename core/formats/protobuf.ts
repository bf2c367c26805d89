import protobuf from 'protobufjs';
import descriptorJson from 'protobufjs/google/protobuf/descriptor.json' with { type: 'json' };
import type { FieldViolation } from '../errors.ts';
import type { Codec, ResolvedSchema } from './types.ts';

/**
 * Protobuf as a Confluent `PROTOBUF` schema. After the 5-byte header comes the
 * message-index list (which message of the .proto file this is: zigzag varints,
 * a count then the path through nested messages; the first top-level message
 * is the single byte 0), then the Protobuf bytes. Sluice writes the file's
 * first message; it reads any message of the file by its indexes.
 *
 * Values are plain objects with the field names as declared (keepCase), enums
 * as their names, 64-bit integers as numbers when exact and BigInts beyond
 * 2^53, bytes as base64, as in Protobuf's JSON mapping.
 */

export interface ProtobufCodec extends Codec {
  readonly schemaType: 'PROTOBUF';
  readonly file: ProtoFile;
}

/** What one .proto text declares, resolved against its references. */
export interface ProtoFile {
  readonly root: protobuf.Root;
  readonly packageName: string;
  readonly syntax: string;
  /** The file's own top-level messages and enums, in declaration order. */
  readonly messages: readonly protobuf.Type[];
  readonly enums: readonly protobuf.Enum[];
}

const PARSE_OPTIONS = { keepCase: true, alternateCommentMode: true };

/*
 * protobufjs's Type#add (7.x) empties the type's field-number index after every field and rebuilds it,
 * from every field so far, to check the next one: parsing a message took time quadratic in its fields
 * (8,000 fields: 3.8 s, and a registry request may carry 1 MiB of them). This keeps the index: it is
 * built once, and each field the original add accepted is entered into it, so the index is exactly what
 * the library would rebuild and every check (duplicate number, reserved, names) is still its own.
 */
const libraryAdd = protobuf.Type.prototype.add;
protobuf.Type.prototype.add = function add(this: protobuf.Type & { _fieldsById: Record<number, protobuf.Field> | null }, object: protobuf.ReflectionObject) {
  const field = object instanceof protobuf.Field && object.extend === undefined ? object : undefined;
  const index = field ? this.fieldsById : undefined;
  const added = libraryAdd.call(this, object);
  if (field && index && this.fields[field.name] === field) {
    index[field.id] = field;
    this._fieldsById = index;
  }
  return added;
};

/**
 * Bounds on a .proto text, checked in one pass before protobufjs sees it: every declaration (field, enum
 * value, option, import) ends with `;`, and each field is checked against every reserved number and range
 * of its message, so their product is the parse's cost. Real schemas stay far below both.
 */
export const MAX_PROTO_STATEMENTS = 1_500;
export const MAX_PROTO_RESERVED = 250;

function requireBoundedProto(text: string): void {
  let statements = 0;
  for (let i = text.indexOf(';'); i !== -1; i = text.indexOf(';', i + 1)) statements++;
  if (statements > MAX_PROTO_STATEMENTS) throw new Error(`the schema has ${statements} declarations (\`;\`); at most ${MAX_PROTO_STATEMENTS}`);
  let reserved = 0;
  // One pass: each `reserved` statement is counted to its `;`, and the search resumes after it.
  for (let at = text.indexOf('reserved'); at !== -1;) {
    const end = text.indexOf(';', at);
    if (end === -1) break;
    reserved += 1;
    for (let i = at; i < end; i++) if (text.charCodeAt(i) === 44 /* , */) reserved++;
    at = text.indexOf('reserved', end + 1);
  }
  if (reserved > MAX_PROTO_RESERVED) throw new Error(`the schema reserves ${reserved} field numbers, names or ranges; at most ${MAX_PROTO_RESERVED}`);
}

/** Confluent's `confluent/meta.proto` (field, message and file tags and docs): built into Confluent's registry, so schemas import it without a reference. */
const CONFLUENT_META = `syntax = "proto3"; package confluent; import "google/protobuf/descriptor.proto";
message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; repeated Rule rules = 4; }
message Rule { string name = 1; string doc = 2; string expr = 3; string sql = 4; }
extend google.protobuf.FileOptions { Meta file_meta = 1088; }
extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }`;

/** Adds the well-known files a schema imports without a reference: google/protobuf/* (descriptor.proto too) and confluent/meta.proto. */
function addWellKnownImports(root: protobuf.Root, imports: readonly string[] | undefined, loaded: Set<string>, referenced: ReadonlySet<string>): void {
  for (const name of imports ?? []) {
    if (loaded.has(name) || referenced.has(name)) continue;
    loaded.add(name);
    if (name === 'confluent/meta.proto') {
      addWellKnownImports(root, ['google/protobuf/descriptor.proto'], loaded, referenced);
      protobuf.parse(CONFLUENT_META, root, PARSE_OPTIONS);
      continue;
    }
    const common = name === 'google/protobuf/descriptor.proto' ? descriptorJson : name.startsWith('google/protobuf/') ? protobuf.common.get(name) : null;
    if (common?.nested) root.addJSON(common.nested);
  }
}

/** A root holding the schema, its references and the well-known files either imports. */
function rootWithImports(resolved: ResolvedSchema, imports: readonly string[] | undefined): protobuf.Root {
  const root = new protobuf.Root();
  const loaded = new Set<string>();
  const referenced = new Set(resolved.references.map((r) => r.name));
  for (const reference of resolved.references) {
    const parsed = protobuf.parse(reference.schema, root, PARSE_OPTIONS);
    addWellKnownImports(root, parsed.imports, loaded, referenced);
  }
  addWellKnownImports(root, imports, loaded, referenced);
  protobuf.parse(resolved.schema, root, PARSE_OPTIONS);
  return root;
}

/** Parses the schema and its references into one root and finds the file's own types. */
export function parseProtoFile(resolved: ResolvedSchema): ProtoFile {
  requireBoundedProto(resolved.schema);
  for (const reference of resolved.references) requireBoundedProto(reference.schema);
  // Parsed alone first: that is the only way to know which types this file (not its imports) declares, and in what order.
  const own = protobuf.parse(resolved.schema, new protobuf.Root(), PARSE_OPTIONS);
  // A file that imports nothing is all its root holds: parsing it again into a fresh root would build the same
  // root (1 MiB of text took 10-20 ms of CPU per parse, on the event loop the registry shares).
  const root = resolved.references.length === 0 && (own.imports ?? []).length === 0 ? own.root : rootWithImports(resolved, own.imports);
  root.resolveAll();
  const packageName = own.package ?? '';
  const scope = packageName === '' ? own.root : own.root.lookup(packageName);
  const nested = scope instanceof protobuf.Namespace ? scope.nestedArray : [];
  const lookup = <T>(kind: new (...args: never[]) => T, name: string): T => root.lookup(packageName === '' ? name : `${packageName}.${name}`, [kind as never]) as T;
  const messages = nested.filter((n) => n instanceof protobuf.Type).map((n) => lookup(protobuf.Type, n.name));
  const enums = nested.filter((n) => n instanceof protobuf.Enum).map((n) => lookup(protobuf.Enum, n.name));
  // `[ \t]*`, not `\s*`, before the keyword: `^\s*` under /m restarts at every line and runs over every newline after it (quadratic).
  const syntax = /^[ \t]*syntax\s*=\s*["'](proto[23])["']/m.exec(resolved.schema)?.[1] ?? 'proto2';
  return { root, packageName, syntax, messages, enums };
}

// ---- message indexes ----

function writeZigzagVarint(out: number[], value: number): void {
  let n = (value << 1) ^ (value >> 31);
  n >>>= 0;
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

function readZigzagVarint(buf: Buffer, offset: number): { value: number; offset: number } {
  let result = 0;
  let shift = 0;
  for (let i = offset; i < buf.length && shift < 35; i++) {
    const byte = buf[i]!;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value: (result >>> 1) ^ -(result & 1), offset: i + 1 };
    shift += 7;
  }
  throw new Error('truncated message-index varint');
}

/** The message-index list: `[0]` (the first message) is written as the single byte 0, as Confluent does. */
export function encodeMessageIndexes(indexes: readonly number[]): Buffer {
  if (indexes.length === 1 && indexes[0] === 0) return Buffer.from([0]);
  const out: number[] = [];
  writeZigzagVarint(out, indexes.length);
  for (const i of indexes) writeZigzagVarint(out, i);
  return Buffer.from(out);
}

/**
 * Reads the message-index list. A payload whose first byte cannot start a
 * short list (0, or a count of 1 to 3 as 0x02/0x04/0x06) is taken as Protobuf
 * bytes with no list, i.e. the first message: @kafkajs/confluent-schema-registry
 * writes that framing, and a Protobuf message's first byte (a field tag, field
 * number >= 1) is 0x08 or more. The price: a Confluent list 4 or more levels
 * deep (first byte 0x08) is not recognised.
 */
export function decodeMessageIndexes(payload: Buffer): { indexes: number[]; offset: number } {
  const first = payload[0];
  if (first === undefined || (first !== 0 && first !== 2 && first !== 4 && first !== 6)) return { indexes: [0], offset: 0 };
  const count = readZigzagVarint(payload, 0);
  if (count.value === 0) return { indexes: [0], offset: count.offset };
  if (count.value < 0 || count.value > 100) throw new Error(`message-index count ${count.value} is not plausible`);
  const indexes: number[] = [];
  let offset = count.offset;
  for (let i = 0; i < count.value; i++) {
    const next = readZigzagVarint(payload, offset);
    indexes.push(next.value);
    offset = next.offset;
  }
  return { indexes, offset };
}

function messageAt(file: ProtoFile, indexes: readonly number[]): protobuf.Type {
  let candidates: readonly protobuf.Type[] = file.messages;
  let found: protobuf.Type | undefined;
  for (const index of indexes) {
    found = candidates[index];
    if (!found) throw new Error(`message index ${indexes.join('.')} names no message of the schema`);
    candidates = found.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
  }
  if (!found) throw new Error('the schema declares no message');
  return found;
}

// ---- validation ----

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);

function integerIn(value: unknown, min: bigint, max: bigint): boolean {
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return false;
    n = BigInt(value);
  } else if (typeof value === 'bigint') n = value;
  else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = BigInt(value);
  else return false;
  return n >= min && n <= max;
}

function scalarProblem(type: string, value: unknown): string | undefined {
  const ok = (() => {
    if (type === 'double' || type === 'float') return typeof value === 'number' || value === 'NaN' || value === 'Infinity' || value === '-Infinity';
    if (INT32.has(type)) return typeof value === 'number' && integerIn(value, -(2n ** 31n), 2n ** 31n - 1n);
    if (UINT32.has(type)) return typeof value === 'number' && integerIn(value, 0n, 2n ** 32n - 1n);
    if (INT64.has(type)) return integerIn(value, -(2n ** 63n), 2n ** 63n - 1n);
    if (UINT64.has(type)) return integerIn(value, 0n, 2n ** 64n - 1n);
    if (type === 'bool') return typeof value === 'boolean';
    if (type === 'string') return typeof value === 'string';
    if (type === 'bytes') return Buffer.isBuffer(value) || value instanceof Uint8Array || (typeof value === 'string' && BASE64.test(value));
    return false;
  })();
  if (ok) return undefined;
  const expected = type === 'bytes' ? 'bytes (base64 string)' : INT64.has(type) || UINT64.has(type) ? `${type} (integer or decimal string)` : type;
  return `expected ${expected}, got ${describeValue(value)}`;
}

const at = (path: string, part: string | number): string => (typeof part === 'number' ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`);

function checkSingle(field: protobuf.Field, value: unknown, path: string, out: FieldViolation[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkMessage(resolved, value, path, out);
  } else if (resolved instanceof protobuf.Enum) {
    const names = Object.keys(resolved.values);
    const ok = (typeof value === 'string' && names.includes(value)) || (typeof value === 'number' && Object.values(resolved.values).includes(value));
    if (!ok) out.push({ path, message: `expected one of ${names.map((n) => JSON.stringify(n)).join(', ')}, got ${describeValue(value)}` });
  } else {
    const problem = scalarProblem(field.type, value);
    if (problem) out.push({ path, message: problem });
  }
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, out: FieldViolation[]): void {
  if (!isPlainObject(value)) {
    out.push({ path, message: `expected message ${type.name}, got ${describeValue(value)}` });
    return;
  }
  for (const key of Object.keys(value)) {
    if (!type.fields[key]) out.push({ path: at(path, key), message: `unknown field (not in message ${type.name})` });
  }
  for (const field of type.fieldsArray) {
    const fieldPath = at(path, field.name);
    const v = value[field.name];
    if (v === undefined || v === null) {
      if (field.required) out.push({ path: fieldPath, message: 'required field is missing' });
      continue;
    }
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(v)) out.push({ path: fieldPath, message: `expected a map (object), got ${describeValue(v)}` });
      else for (const [k, item] of Object.entries(v)) checkSingle(field, item, at(fieldPath, k), out);
    } else if (field.repeated) {
      if (!Array.isArray(v)) out.push({ path: fieldPath, message: `expected a list (repeated ${field.type}), got ${describeValue(v)}` });
      else v.forEach((item, i) => checkSingle(field, item, at(fieldPath, i), out));
    } else {
      checkSingle(field, v, fieldPath, out);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => value[f.name] !== undefined && value[f.name] !== null).map((f) => f.name);
    if (set.length > 1) out.push({ path: at(path, oneof.name), message: `at most one of oneof ${oneof.name} may be set, got ${set.join(', ')}` });
  }
}

// ---- value conversion ----

const LONG_TYPES = new Set([...INT64, ...UINT64]);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** protobufjs takes longs as numbers or decimal strings, not BigInts. */
function bigintsToStrings(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(bigintsToStrings);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bigintsToStrings(v)]));
  return value;
}

function exactLong(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const n = BigInt(value);
  return n >= MIN_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

/** Longs decoded as strings (exact) become numbers when safe, BigInts otherwise. */
function normalizeLongs(type: protobuf.Type, object: Record<string, unknown>): Record<string, unknown> {
  for (const field of type.fieldsArray) {
    const v = object[field.name];
    if (v === undefined || v === null) continue;
    const convert = (item: unknown): unknown => {
      if (field.resolvedType instanceof protobuf.Type && isPlainObject(item)) return normalizeLongs(field.resolvedType, item);
      return LONG_TYPES.has(field.type) ? exactLong(item) : item;
    };
    if (field instanceof protobuf.MapField && isPlainObject(v)) object[field.name] = Object.fromEntries(Object.entries(v).map(([k, item]) => [k, convert(item)]));
    else if (field.repeated && Array.isArray(v)) object[field.name] = v.map(convert);
    else object[field.name] = convert(v);
  }
  return object;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: true, arrays: true, objects: true };

export function protobufCodec(resolved: ResolvedSchema): ProtobufCodec {
  const file = parseProtoFile(resolved);
  const message = file.messages[0];
  const prefix = encodeMessageIndexes([0]);
  return {
    schemaType: 'PROTOBUF',
    file,
    validate(value) {
      if (!message) return [{ path: '', message: 'the schema declares no message' }];
      const out: FieldViolation[] = [];
      checkMessage(message, value, '', out);
      return out;
    },
    encode(value) {
      if (!message) throw new Error('the schema declares no message');
      const body = message.encode(message.fromObject(bigintsToStrings(value) as Record<string, unknown>)).finish();
      return Buffer.concat([prefix, body]);
    },
    decode(payload) {
      const { indexes, offset } = decodeMessageIndexes(payload);
      const type = messageAt(file, indexes);
      const decoded = type.decode(payload.subarray(offset));
      return normalizeLongs(type, type.toObject(decoded, TO_OBJECT));
    },
  };
}
