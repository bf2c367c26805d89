import { isUtf8 } from 'node:buffer';
import type { Schema, Type } from 'avsc';
import { decimalString } from './display.ts';

/**
 * Avro binary straight to the JSON text `sluice tail --format ndjson` and the read path print, with no
 * intermediate value: the decoded object, the display conversion and JSON.stringify were half of a backlog
 * tail's CPU. Compiled once per writer schema from its avsc type (so unions are wrapped or not exactly as the
 * decoder has them), with the schema text beside it for what avsc does not keep (decimal logical types).
 *
 * The text must be the one the decoding path (RecordDecoder.decode + the ndjson formatter) prints, byte for byte
 * (tests/unit/transcode.test.ts checks it over random schemas and values). So the transcoder refuses what it
 * does not write exactly: at compile time a schema it does not cover (compileTranscoder gives undefined), and
 * per record anything malformed or unusual (TranscodeBail): that record then takes the decoding path, which
 * prints it, or its error, as before.
 */

/** Where a transcoder reads (`src` from `at` to `end`) and writes (`out` from `o`, grown as needed; `view` is a view of `out`). */
export interface Cursor {
  src: Buffer;
  at: number;
  end: number;
  out: Buffer;
  view: DataView;
  o: number;
}

/** Points `c` at `out`, to write from its start. */
export function writeTo(c: Cursor, out: Buffer): void {
  c.out = out;
  c.view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  c.o = 0;
}

/** The one object thrown when a record must take the decoding path (thrown often enough for one instance to matter). */
export class TranscodeBail extends Error {}
export const BAIL = new TranscodeBail('the record needs the decoding path');

export type Transcode = (c: Cursor) => void;

/** Makes room for `n` more output bytes. */
export function room(c: Cursor, n: number): void {
  if (c.o + n <= c.out.length) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(c.out.length * 2, c.o + n));
  c.out.copy(grown, 0, 0, c.o);
  const o = c.o;
  writeTo(c, grown);
  c.o = o;
}

/** Writes bytes known in advance (JSON punctuation, field names). */
export function put(c: Cursor, bytes: Uint8Array): void {
  room(c, bytes.length);
  const out = c.out;
  let o = c.o;
  if (bytes.length > 32) {
    out.set(bytes, o);
    o += bytes.length;
  } else for (let i = 0; i < bytes.length; i++) out[o++] = bytes[i]!;
  c.o = o;
}

/** Sets each generated function apart, so that V8 does not share one compilation (and its call sites' feedback) among them. */
let generatedCount = 0;

/**
 * A writer made of `body` (code of this module: numbers and names of `scope`, no text from any schema) over `c`, with
 * `scope`'s values as its constants. Writers of this file take the form of a closure otherwise; but the closures of one
 * function share their call sites' feedback, so an array writer calling its items' writer would call every array's
 * item writer from one site, which V8 then cannot inline. Each generated writer has call sites of its own.
 */
function generated(scope: Record<string, unknown>, body: string): Transcode {
  const names = Object.keys(scope);
  const make = new Function(...names, `// ${++generatedCount}\nreturn function transcode(c) {\n${body}\n};`) as (...values: unknown[]) => Transcode;
  return make(...names.map((name) => scope[name]));
}

/**
 * Code writing `bytes` (known in advance: field names, punctuation, enum symbols) as stores of constants, four bytes
 * a store (a DataView's, big-endian: the bytes in order), then two, then one: a generated writer's, with `view`
 * and `o` its variables and `room` in its scope. A loop over the bytes of a Buffer (put) cost a call, a length and a
 * load per byte.
 */
function constantCode(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stores: string[] = [];
  let i = 0;
  for (; i + 4 <= b.length; i += 4) stores.push(`view.setUint32(o + ${i}, ${b.readUInt32BE(i)});`);
  if (i + 2 <= b.length) {
    stores.push(`view.setUint16(o + ${i}, ${b.readUInt16BE(i)});`);
    i += 2;
  }
  if (i < b.length) stores.push(`view.setUint8(o + ${i}, ${b[i]});`);
  return `room(c, ${b.length});\nview = c.view;\no = c.o;\n${stores.join(' ')}\nc.o = o + ${b.length};`;
}

/** A writer of `bytes` (known in advance) as constantCode writes them. */
export function constantWriter(bytes: Uint8Array): Transcode {
  return generated({ room }, `let view;\nlet o;\n${constantCode(bytes)}`);
}

/** Writes ASCII text (numbers, base64, ISO times). */
export function putAscii(c: Cursor, text: string): void {
  room(c, text.length);
  const out = c.out;
  let o = c.o;
  for (let i = 0; i < text.length; i++) out[o++] = text.charCodeAt(i);
  c.o = o;
}

/** Writes any text as UTF-8. */
export function putText(c: Cursor, text: string): void {
  room(c, text.length * 3);
  c.o += c.out.write(text, c.o, 'utf8');
}

/** A view of the buffer values are read from (Cursor.src), made once per buffer: floats, doubles and strings are read through it. */
let srcView: DataView = new DataView(new ArrayBuffer(0));
let srcViewOf: Buffer | undefined;

function viewOf(src: Buffer): DataView {
  if (src !== srcViewOf) {
    srcView = new DataView(src.buffer, src.byteOffset, src.byteLength);
    srcViewOf = src;
  }
  return srcView;
}

/** JSON's null, and the array opener: the NDJSON line writer (ndjson.ts) writes them too. */
export const NULL = Buffer.from('null');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** Per byte: 1 when JSON escapes it (control characters, quote, backslash), 2 when it is not ASCII. */
const BYTE_KINDS = new Uint8Array(256).map((_, b) => (b < 0x20 || b === 0x22 || b === 0x5c ? 1 : b >= 0x80 ? 2 : 0));

/**
 * `src[from, to)` as a JSON string, as JSON.stringify writes `src.toString('utf8', from, to)` in UTF-8; false, with
 * nothing written, when the bytes are not valid UTF-8. The common case (no escapes, valid UTF-8) is copied as it is:
 * four bytes a load and a store while they are ASCII JSON leaves as it is (most of ids, names, codes), then one
 * table look-up per byte; escapes go through the string.
 */
export function putUtf8Json(c: Cursor, src: Buffer, from: number, to: number): boolean {
  room(c, to - from + 2);
  const out = c.out;
  let o = c.o;
  out[o++] = 0x22;
  let i = from;
  if (to - from >= 4) {
    const source = viewOf(src);
    const view = c.view;
    for (; i + 4 <= to; i += 4) {
      const w = source.getUint32(i);
      // A byte of 0x80 or more, below 0x20, a quote or a backslash sets its top bit in one of these (a byte
      // below such a one may set others): the byte loop below takes over from there.
      if (((w | (w - 0x20202020) | ((w ^ 0x22222222) - 0x01010101) | ((w ^ 0x5c5c5c5c) - 0x01010101)) & 0x80808080) !== 0) break;
      view.setUint32(o, w);
      o += 4;
    }
  }
  let kinds = 0;
  for (; i < to; i++) {
    const b = src[i]!;
    kinds |= BYTE_KINDS[b]!;
    out[o++] = b;
  }
  if (kinds !== 0 && (kinds & 2) !== 0 && !isUtf8(src.subarray(from, to))) return false;
  if (kinds === 0 || kinds === 2) {
    out[o++] = 0x22;
    c.o = o;
    return true;
  }
  putText(c, JSON.stringify(src.toString('utf8', from, to)));
  return true;
}

/** putUtf8Json, and for bytes that are not valid UTF-8 the string decoding makes of them (U+FFFD for each bad sequence). */
export function putUtf8String(c: Cursor, src: Buffer, from: number, to: number): void {
  if (!putUtf8Json(c, src, from, to)) putText(c, JSON.stringify(src.toString('utf8', from, to)));
}

/** A zigzag varint of at most `maxBytes` bytes (7 keeps it exact in a double), or BAIL. */
function readSmallLong(c: Cursor, maxBytes: number): number {
  const src = c.src;
  let at = c.at;
  let n = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (at >= c.end) throw BAIL;
    const b = src[at++]!;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      c.at = at;
      return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
    }
    scale *= 128;
  }
  throw BAIL;
}

/**
 * The digits of a long of 8 to 10 bytes (beyond 2^49), exactly: the decoding path gives a BigInt beyond 2^53 and
 * prints its digits. Shorter ones are writeLong's.
 */
function longBeyond49Bits(c: Cursor): string {
  const src = c.src;
  let at = c.at;
  // Up to ten bytes, the tenth holding only bit 63: anything longer is malformed.
  let n = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (at >= c.end) throw BAIL;
    const b = src[at++]!;
    if (i === 9 && b > 1) throw BAIL;
    n |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) {
      c.at = at;
      // A number or a BigInt on the decoding path: the same digits.
      return ((n & 1n) === 1n ? -((n + 1n) >> 1n) : n >> 1n).toString();
    }
  }
  throw BAIL;
}

/** A block count of an array or map (a negative one is followed by the block's size in bytes). */
function readCount(c: Cursor): number {
  let n = readSmallLong(c, 7);
  if (n < 0) {
    n = -n;
    readSmallLong(c, 10);
  }
  // Each item takes a byte at least, except of zero-byte types; a count beyond that is malformed or hostile.
  if (n > c.end - c.at && n > 1024) throw BAIL;
  return n;
}

/** How many decimal digits a whole number below 2^31 has: a few comparisons, not one per digit. */
function digitCount(x: number): number {
  if (x < 100_000) return x < 100 ? (x < 10 ? 1 : 2) : x < 1_000 ? 3 : x < 10_000 ? 4 : 5;
  return x < 10_000_000 ? (x < 1_000_000 ? 6 : 7) : x < 100_000_000 ? 8 : x < 1_000_000_000 ? 9 : 10;
}

/**
 * A safe integer's decimal digits, as `${n}` prints them (-0 as 0), written without the string: ints, longs and
 * whole doubles are most numbers in events. Digits are made in int32 arithmetic, eight at a time beyond 2^31
 * (timestamps in milliseconds are 13 digits).
 */
export function putInteger(c: Cursor, n: number): void {
  room(c, 17);
  const out = c.out;
  let o = c.o;
  if (n < 0) {
    out[o++] = 0x2d;
    n = -n;
  }
  let x: number;
  if (n < 0x80000000) {
    x = n | 0;
    o += digitCount(x);
    c.o = o;
  } else {
    // The part above the low eight digits is below 2^31 for a safe integer (2^53 / 10^8 < 10^8); the quotient
    // is corrected where the division rounded, so both parts are exact.
    let high = Math.floor(n / 100_000_000);
    let low = n - high * 100_000_000;
    if (low < 0) {
      high -= 1;
      low += 100_000_000;
    } else if (low >= 100_000_000) {
      high += 1;
      low -= 100_000_000;
    }
    x = high | 0;
    o += digitCount(x) + 8;
    c.o = o;
    let y = low | 0;
    for (let i = 0; i < 8; i++) {
      const q = (y / 10) | 0;
      out[--o] = 0x30 + y - q * 10;
      y = q;
    }
  }
  do {
    const q = (x / 10) | 0;
    out[--o] = 0x30 + x - q * 10;
    x = q;
  } while (x > 0);
}

/**
 * A double as `${value}` prints it (the shortest decimal that reads back as the value). A number of at most two
 * decimals (prices, amounts) is written from its hundredths: when `value` is the double nearest `cents / 100`, that
 * decimal is the shortest one reading back as it, as long as neighbouring doubles lie closer than 0.01 (below
 * 2^52 / 100): any shorter decimal would be another multiple of 0.01, farther from `value` than half a step.
 */
function writeNumber(c: Cursor, value: number): void {
  if (Number.isSafeInteger(value)) {
    putInteger(c, value);
    return;
  }
  const cents = Math.round(value * 100);
  if (cents / 100 === value && value < 4.5e13 && value > -4.5e13) {
    // Not whole (the case above), so the hundredths are not 00.
    const magnitude = cents < 0 ? -cents : cents;
    const whole = Math.floor(magnitude / 100);
    const hundredths = magnitude - whole * 100;
    if (cents < 0) putAscii(c, '-');
    putInteger(c, whole);
    room(c, 3);
    const out = c.out;
    const tenths = (hundredths / 10) | 0;
    out[c.o++] = 0x2e;
    out[c.o++] = 0x30 + tenths;
    if (hundredths !== tenths * 10) out[c.o++] = 0x30 + hundredths - tenths * 10;
    return;
  }
  if (Number.isFinite(value)) putAscii(c, `${value}`);
  else put(c, NULL);
}

const writeNull: Transcode = constantWriter(NULL);

const writeBoolean: Transcode = (c) => {
  if (c.at >= c.end) throw BAIL;
  put(c, c.src[c.at++] !== 0 ? TRUE : FALSE);
};

const writeInt: Transcode = (c) => putInteger(c, readSmallLong(c, 5));

const writeLong: Transcode = (c) => {
  // Up to seven bytes (49 bits: timestamps, counters) exactly in a double; longer ones as longBeyond49Bits.
  const src = c.src;
  const end = c.end;
  let at = c.at;
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (at >= end) throw BAIL;
    const b = src[at++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) {
      c.at = at;
      putInteger(c, n % 2 === 1 ? -(n + 1) / 2 : n / 2);
      return;
    }
    scale *= 128;
  }
  putAscii(c, longBeyond49Bits(c));
};

// Avro's floats and doubles are little-endian. A DataView reads one in a load where copying its bytes into a
// typed array took one per byte.
const writeFloat: Transcode = (c) => {
  const at = c.at;
  if (at + 4 > c.end) throw BAIL;
  writeNumber(c, viewOf(c.src).getFloat32(at, true));
  c.at = at + 4;
};

const writeDouble: Transcode = (c) => {
  const at = c.at;
  if (at + 8 > c.end) throw BAIL;
  writeNumber(c, viewOf(c.src).getFloat64(at, true));
  c.at = at + 8;
};

function byteRange(c: Cursor, size: number): number {
  const from = c.at;
  if (size < 0 || from + size > c.end) throw BAIL;
  c.at = from + size;
  return from;
}

const writeString: Transcode = (c) => {
  const size = readSmallLong(c, 7);
  const from = byteRange(c, size);
  putUtf8String(c, c.src, from, from + size);
};

/** Bytes and fixed are base64 strings (stringifyJson), decimals exact decimal strings (display.ts). */
function bytesWriter(size: number | undefined, scale: number | undefined): Transcode {
  return (c) => {
    const length = size ?? readSmallLong(c, 7);
    const from = byteRange(c, length);
    const text = scale === undefined ? c.src.toString('base64', from, from + length) : decimalString(c.src.subarray(from, from + length), scale);
    room(c, text.length + 2);
    c.out[c.o++] = 0x22;
    putAscii(c, text);
    c.out[c.o++] = 0x22;
  };
}

const OPEN_BRACE = Buffer.from('{');
const CLOSE_BRACE = Buffer.from('}');
const COMMA = Buffer.from(',');
export const OPEN_BRACKET = Buffer.from('[');
const CLOSE_BRACKET = Buffer.from(']');
const COLON = Buffer.from(':');

/** Object keys that are array indices come first in a JS object, and `__proto__` is no own key: such maps take the decoding path. */
const INDEX_LIKE = /^(?:0|[1-9]\d{0,9})$/;

function mapWriter(values: Transcode): Transcode {
  return (c) => {
    put(c, OPEN_BRACE);
    let first = true;
    let keys: Set<string> | undefined;
    for (let n = readCount(c); n > 0; n = readCount(c)) {
      for (; n > 0; n--) {
        const size = readSmallLong(c, 7);
        const from = byteRange(c, size);
        const key = c.src.toString('utf8', from, from + size);
        // Decoding assigns keys to an object: a repeated key keeps its first place and its last value.
        if (key === '__proto__' || (INDEX_LIKE.test(key) && Number(key) < 2 ** 32 - 1)) throw BAIL;
        keys ??= new Set();
        if (keys.has(key)) throw BAIL;
        keys.add(key);
        if (first) first = false;
        else put(c, COMMA);
        putUtf8String(c, c.src, from, from + size);
        put(c, COLON);
        values(c);
      }
    }
    put(c, CLOSE_BRACE);
  };
}

function arrayWriter(items: Transcode): Transcode {
  return generated(
    { room, readCount, items },
    `let view;
    let o;
    ${constantCode(OPEN_BRACKET)}
    let first = true;
    for (let n = readCount(c); n > 0; n = readCount(c)) {
      for (; n > 0; n--) {
        if (first) first = false;
        else {
          ${constantCode(COMMA)}
        }
        items(c);
      }
    }
    ${constantCode(CLOSE_BRACKET)}`,
  );
}

class Unsupported extends Error {}

type SchemaNode = string | SchemaNode[] | SchemaObject;
interface SchemaObject {
  type?: SchemaNode;
  name?: string;
  logicalType?: string;
  scale?: number;
  fields?: { name: string; type: SchemaNode }[];
  items?: SchemaNode;
  values?: SchemaNode;
}

interface AvscType {
  typeName: string;
  name?: string;
  branchName?: string;
  fields?: { name: string; type: AvscType }[];
  types?: AvscType[];
  itemsType?: AvscType;
  valuesType?: AvscType;
  underlyingType?: AvscType;
  symbols?: string[];
  size?: number;
}

class Compiler {
  /** Named types' definitions in the schema text, by avsc type (a reference names a type the walk met before). */
  readonly #definitions = new Map<AvscType, SchemaObject>();
  readonly #shortNames = new Set<string>();
  readonly #compiled = new Map<AvscType, Transcode>();
  decimals = false;
  wideUnions = false;

  compile(type: AvscType, node: SchemaNode): Transcode {
    // `{"type": {...}}` wraps a schema; a string names a primitive or a type defined earlier.
    while (typeof node === 'object' && !Array.isArray(node) && node.type !== undefined && typeof node.type === 'object') node = node.type;
    if (typeof node === 'string' && type.name !== undefined) {
      const definition = this.#definitions.get(type);
      // A type from a schema reference: its text is not here, so whether it holds a decimal is unknown.
      if (definition === undefined) throw new Unsupported(`no definition of ${type.name}`);
      node = definition;
    }
    const object = typeof node === 'object' && !Array.isArray(node) ? node : undefined;
    if (type.name !== undefined && object !== undefined && !this.#definitions.has(type)) {
      const short = type.name.slice(type.name.lastIndexOf('.') + 1);
      // The display plan looks named types up by short name too: two alike could be confused there.
      if (this.#shortNames.has(short)) throw new Unsupported(`two types named ${short}`);
      this.#shortNames.add(short);
      this.#definitions.set(type, object);
    }
    const done = this.#compiled.get(type);
    if (done !== undefined && type.name !== undefined) return done;
    switch (type.typeName) {
      case 'null':
        return writeNull;
      case 'boolean':
        return writeBoolean;
      case 'int':
        return writeInt;
      case 'long':
      case 'abstract:long':
        return writeLong;
      case 'float':
        return writeFloat;
      case 'double':
        return writeDouble;
      case 'string':
        return writeString;
      case 'bytes':
      case 'fixed': {
        const size = type.typeName === 'fixed' ? type.size : undefined;
        if (object?.logicalType === 'decimal') {
          this.decimals = true;
          return bytesWriter(size, object.scale ?? 0);
        }
        return bytesWriter(size, undefined);
      }
      case 'logical:timestamp-millis':
        return this.compile(type.underlyingType!, 'long');
      case 'enum': {
        const symbols = type.symbols!.map((s) => Buffer.from(JSON.stringify(s)));
        // Up to 64 symbols, each written by code of its own (constantCode); more, copied as Buffers.
        const writer: Transcode =
          symbols.length <= 64
            ? generated(
                { room, readSmallLong, BAIL },
                `let view;\nlet o;\nswitch (readSmallLong(c, 5)) {\n${symbols.map((symbol, i) => `case ${i}: {\n${constantCode(symbol)}\nreturn;\n}`).join('\n')}\n}\nthrow BAIL;`,
              )
            : (c) => {
                const symbol = symbols[readSmallLong(c, 5)];
                if (symbol === undefined) throw BAIL;
                put(c, symbol);
              };
        this.#compiled.set(type, writer);
        return writer;
      }
      case 'array':
        return arrayWriter(this.compile(type.itemsType!, object?.items ?? ''));
      case 'map':
        return mapWriter(this.compile(type.valuesType!, object?.values ?? ''));
      case 'record':
      case 'error':
        return this.#record(type, object);
      case 'union:unwrapped':
      case 'union:wrapped':
        return this.#union(type, Array.isArray(node) ? node : []);
      default:
        throw new Unsupported(`type ${type.typeName}`);
    }
  }

  #record(type: AvscType, object: SchemaObject | undefined): Transcode {
    const fields = type.fields!;
    const nodes = object?.fields ?? [];
    const writers: Transcode[] = [];
    const names: Buffer[] = fields.map((f, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:`));
    if (fields.some((f) => f.name === '__proto__')) throw new Unsupported('a field named __proto__');
    // A recursive reference calls the writer being compiled: through `writer`, which calls the fields' code once made.
    let fieldsCode: Transcode = () => undefined;
    const writer: Transcode = (c) => fieldsCode(c);
    this.#compiled.set(type, writer);
    for (let i = 0; i < fields.length; i++) writers.push(this.compile(fields[i]!.type, nodes[i]?.type ?? ''));
    fieldsCode = writers.length === 0 ? (c) => put(c, EMPTY_OBJECT) : fieldSequence(names, writers);
    return writer;
  }

  #union(type: AvscType, nodes: SchemaNode[]): Transcode {
    const branches = type.types!;
    if (branches.filter((b) => b.typeName !== 'null').length > 1) this.wideUnions = true;
    const writers = branches.map((b, i) => this.compile(b, nodes[i] ?? ''));
    const wrapped = type.typeName === 'union:wrapped';
    // The wide type (decodeExact's, for values holding a number beyond 2^52) does not count its long among a
    // union's numbers, so it unwraps the unions of a long and another number the fast type wraps: the printed
    // shape then depends on the value.
    if (wrapped && branches.some((b) => b.typeName === 'long')) throw new Unsupported('a wrapped union with a long');
    // A wrapped branch is an object of one key, the branch's (qualified) name; its null branch is plain null.
    const keys = branches.map((b) => (wrapped && b.typeName !== 'null' ? Buffer.from(`{${JSON.stringify(b.branchName)}:`) : undefined));
    // The branch index is one byte up to 63 (zigzag: twice the index); each branch's writer is called from a site of its own.
    if (branches.length <= 63) {
      const scope: Record<string, unknown> = { BAIL, room };
      const cases = writers.map((writer, i) => {
        scope[`w${i}`] = writer;
        const key = keys[i];
        return `case ${2 * i}:\n${key === undefined ? `w${i}(c);` : `${constantCode(key)}\nw${i}(c);\n${constantCode(CLOSE_BRACE)}`}\nreturn;`;
      });
      return generated(scope, `let view;\nlet o;\nif (c.at >= c.end) throw BAIL;\nswitch (c.src[c.at++]) {\n${cases.join('\n')}\n}\nthrow BAIL;`);
    }
    return (c) => {
      const index = readSmallLong(c, 5);
      const writer = writers[index];
      if (writer === undefined) throw BAIL;
      const key = keys[index];
      if (key === undefined) return writer(c);
      put(c, key);
      writer(c);
      put(c, CLOSE_BRACE);
    };
  }
}

const EMPTY_OBJECT = Buffer.from('{}');

/**
 * A record's fields written in sequence by code of their own (one function per record type): each field's call site
 * then always calls the same writer, which V8 may inline, and the field names' bytes are stores of constants. A loop
 * over the fields calls every writer of every record type from one site, and copies each name byte by byte.
 */
function fieldSequence(names: readonly Buffer[], writers: readonly Transcode[]): Transcode {
  // A record of many or long names copies them with put: code too large is not optimized.
  const inline = names.reduce((sum, name) => sum + name.length, 0) <= 2048;
  const scope: Record<string, unknown> = { room, put };
  const steps = writers.map((writer, i) => {
    scope[`w${i}`] = writer;
    scope[`n${i}`] = names[i];
    return `${inline ? constantCode(names[i]!) : `put(c, n${i});`}\nw${i}(c);`;
  });
  return generated(scope, `let view;\nlet o;\n${steps.join('\n')}\n${constantCode(CLOSE_BRACE)}`);
}

/**
 * The transcoder of values written with `type` (avsc's, as the decoder uses it) and `schema` (its text), or
 * undefined for a schema it does not write exactly as the decoding path prints it. The transcoder writes one
 * value and leaves `c.at` after it; it throws BAIL for a value it does not write.
 */
export function compileTranscoder(type: Type, schema: Schema): Transcode | undefined {
  const compiler = new Compiler();
  let transcode: Transcode;
  try {
    transcode = compiler.compile(type as unknown as AvscType, schema as unknown as SchemaNode);
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
  // The display plan converts decimals inside unions of several types by branch name, which it may not match as avsc does.
  if (compiler.decimals && compiler.wideUnions) return undefined;
  return transcode;
}
