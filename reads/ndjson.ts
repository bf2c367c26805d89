import type { FetchedBatch, RecordView } from '../kafka/index.ts';
import type { RecordDecoder } from './decode.ts';
import { createFormatter, releaser, type Formatter } from './format.ts';
import { BAIL, NULL, OPEN_BRACKET, put, putAscii, putInteger, putText, putUtf8Json, putUtf8String, room, TranscodeBail, type Cursor } from './transcode.ts';

/** A batch's lines (NdjsonEncoder.encode). */
export interface Encoded {
  bytes: Buffer;
  count: number;
  /** The offset after the last record encoded; undefined when none was. */
  next: bigint | undefined;
  release: () => void;
}

/** Thrown for a record framed with a schema the decoder has not prepared: encode then gives undefined. */
const UNPREPARED = new Error('a schema of the batch is not prepared');

/** Smallest output buffer kept, so that small batches do not each allocate. */
const MIN_BUFFER = 1024 * 1024;

const KEY = Buffer.from('","key":');
const VALUE = Buffer.from(',"value":');
const HEADERS = Buffer.from(',"headers":[');
const END = Buffer.from('}\n');
const HEX_KEY = Buffer.from('{"hex":"');
const NEXT_PAIR = Buffer.from(',[');
const EMPTY_STRING = Buffer.from('""');
/** What the names of RULE_HEADERS begin with. */
const RULE_PREFIX = Buffer.from('__rule.');
/** Header lists longer than this (in bytes as fetched) are not kept for the next record (NdjsonEncoder's #lastHeaderBytes). */
const MAX_CACHED_HEADER_BYTES = 512;

/**
 * A batch's records as NDJSON lines in one Buffer, written straight from the fetched bytes: the line the ndjson
 * formatter prints for the decoded record (same fields, order and text), without a KafkaRecord, the decoded record,
 * its value object or its JSON string. The records are read in place (FetchedBatch.visit): key, value and header
 * bytes are copied from where the fetch put them. Values go through their schema's transcoder (transcode.ts); a
 * record it does not cover (no transcoder for its schema, a framed key, malformed bytes: then the line says why) is
 * decoded and formatted as before. Buffers are kept and reused, as LineEncoder's: at most two, one being written
 * while the next is filled.
 */
export class NdjsonEncoder {
  readonly #decoder: RecordDecoder;
  readonly #headers: boolean;
  readonly #formatter: Formatter;
  readonly #free: Buffer[] = [];
  readonly #cursor: Cursor = { src: Buffer.alloc(0), at: 0, end: 0, out: Buffer.alloc(0), o: 0 };
  /** `{"topic":…,"partition":…,"offset":"` of the batch being encoded. */
  #prefix = { topic: '', partition: -1, bytes: Buffer.alloc(0) };
  // Records produced together share a second: toISOString (and a Buffer of its text) once per second, not per
  // millisecond, which one-record batches (single events through the ingress) rarely share; the milliseconds are
  // written over the kept text's.
  #lastSecond = Number.NaN;
  #lastIso: Buffer = Buffer.alloc(0);
  /** Headers written so far of the record being encoded (a comma goes before all but the first). */
  #headerIndex = 0;
  /** The offset of the last record encoded, as its batch's base (RecordView.baseOffsetNumber) and its delta (no bigint per record). */
  #lastBase = 0;
  #lastDelta = 0;
  /** The last record's offset when its base is past a number's reach (#lastBase -1). */
  #lastBigOffset = 0n;
  /** Where the headers of the record being encoded lie. */
  #headerSource: Buffer = Buffer.alloc(0);
  readonly #record = (r: RecordView): void => this.#encodeRecord(r);
  readonly #header = (nameStart: number, nameLength: number, valueStart: number, valueLength: number): void => this.#headerPair(nameStart, nameLength, valueStart, valueLength);
  /**
   * The last headers written (their bytes as fetched, their count) and their text: the records of one request share
   * their headers (its correlation id), so most records' headers are the previous record's, byte for byte, and are
   * written by copying that text instead of walking and escaping them again (and checking them for rule names: a
   * header list that was written had none).
   */
  readonly #lastHeaderBytes = Buffer.allocUnsafeSlow(MAX_CACHED_HEADER_BYTES);
  readonly #lastHeaderView = new DataView(this.#lastHeaderBytes.buffer, this.#lastHeaderBytes.byteOffset, MAX_CACHED_HEADER_BYTES);
  /** A view of the buffer the record being encoded lies in, for #sameHeaders. */
  #source: DataView = new DataView(new ArrayBuffer(0));
  #sourceOf: Buffer | undefined;
  #lastHeaderLength = -1;
  #lastHeaderCount = 0;
  #lastHeaderText = Buffer.allocUnsafeSlow(1024);
  #lastHeaderTextLength = 0;
  /** Whether the record being encoded has a header named `__rule.…` (RULE_HEADERS). */
  #ruleHeaders = false;
  readonly #noteRuleHeader = (nameStart: number, nameLength: number): void => {
    const b = this.#headerSource;
    if (nameLength < RULE_PREFIX.length) return;
    for (let i = 0; i < RULE_PREFIX.length; i++) if (b[nameStart + i] !== RULE_PREFIX[i]) return;
    this.#ruleHeaders = true;
  };

  /** The schemas of the batches' records are `decoder`'s: encodeFetched has it fetch those it has not seen. */
  constructor(decoder: RecordDecoder, options: { headers: boolean }) {
    this.#decoder = decoder;
    this.#headers = options.headers;
    this.#formatter = createFormatter('ndjson', options);
  }

  /**
   * encode, after `decoder` fetched the schemas of the batch's records when one of them was not there (the first
   * batches of a read, a new schema): walking every batch for its schema ids first was a tenth of the encoding.
   */
  async encodeFetched(batch: FetchedBatch, limit = Infinity): Promise<Encoded> {
    const encoded = this.encode(batch, limit);
    if (encoded !== undefined) return encoded;
    await this.#decoder.prepareFetched(batch);
    // Every id has its plan now (a schema that cannot be had, its error): the decoding path shows that on the line.
    const again = this.encode(batch, limit);
    if (again === undefined) throw new Error("the batch's schemas were prepared, yet a record needs another");
    return again;
  }

  /**
   * The lines of at most `limit` of the batch's records, how many that was and the offset after the last of them;
   * undefined when a record is framed with a schema `decoder` has not prepared (RecordDecoder.prepareFetched).
   * `release` hands the buffer back: call it from the write's callback, once the bytes have left.
   */
  encode(batch: FetchedBatch, limit = Infinity): Encoded | undefined {
    const c = this.#cursor;
    let out = this.#free.pop();
    if (out === undefined) out = Buffer.allocUnsafeSlow(MIN_BUFFER);
    c.out = out;
    c.o = 0;
    if (this.#prefix.topic !== batch.topic || this.#prefix.partition !== batch.partition) {
      this.#prefix = {
        topic: batch.topic,
        partition: batch.partition,
        bytes: Buffer.from(`{"topic":${JSON.stringify(batch.topic)},"partition":${batch.partition},"offset":"`),
      };
    }
    let count: number;
    try {
      count = batch.visit(this.#record, limit);
    } catch (error) {
      if (error !== UNPREPARED) throw error;
      releaser(this.#free, c.out)();
      return undefined;
    }
    return {
      bytes: c.out.subarray(0, c.o),
      count,
      next: count === 0 ? undefined : this.#lastBase >= 0 ? BigInt(this.#lastBase + this.#lastDelta + 1) : this.#lastBigOffset + 1n,
      release: releaser(this.#free, c.out),
    };
  }

  #encodeRecord(r: RecordView): void {
    this.#lastBase = r.baseOffsetNumber;
    this.#lastDelta = r.offsetDelta;
    if (r.baseOffsetNumber < 0) this.#lastBigOffset = r.offset;
    const c = this.#cursor;
    const start = c.o;
    try {
      this.#line(c, r);
    } catch (error) {
      if (!(error instanceof TranscodeBail)) throw error;
      c.o = start;
      putText(c, this.#formatter.format(this.#decoder.decode(r.toRecord(this.#prefix.topic, this.#prefix.partition))));
    }
  }

  #line(c: Cursor, r: RecordView): void {
    const b = r.buffer;
    const keyStart = r.keyStart;
    const keyLength = r.keyLength;
    const keyFramed = keyLength >= 5 && b[keyStart] === 0;
    // The schemas of a framed key and value must be there, for this line or the decoding path's (encodeFetched).
    if (keyFramed && !this.#decoder.prepared(b.readUInt32BE(keyStart + 1))) throw UNPREPARED;
    const valueStart = r.valueStart;
    const valueLength = r.valueLength;
    // Not framed (or null): the decoding path names what is wrong with it.
    if (valueLength < 5 || b[valueStart] !== 0) throw BAIL;
    const schemaId = b.readUInt32BE(valueStart + 1);
    const transcode = this.#decoder.transcoder(schemaId);
    if (transcode === undefined) throw this.#decoder.prepared(schemaId) ? BAIL : UNPREPARED;
    // A framed key is decoded by its schema: the decoding path does that.
    if (keyFramed) throw BAIL;
    const sameHeaders = this.#headers && r.headerCount > 0 && this.#sameHeaders(b, r.headersStart, r.end, r.headerCount);
    // A dead letter's line names the rule that sent it (`"rule":…`, from its headers): the decoding path writes that.
    if (r.headerCount > 0 && !sameHeaders) {
      this.#ruleHeaders = false;
      this.#headerSource = b;
      r.eachHeader(this.#noteRuleHeader);
      if (this.#ruleHeaders) throw BAIL;
    }

    put(c, this.#prefix.bytes);
    putOffset(c, r);
    const timestamp = r.timestampMs;
    const second = Math.floor(timestamp / 1000);
    if (second !== this.#lastSecond) {
      this.#lastIso = Buffer.from(`","timestamp":"${new Date(timestamp).toISOString()}`);
      this.#lastSecond = second;
    }
    put(c, this.#lastIso);
    // The milliseconds: the three digits before the closing Z.
    const ms = timestamp - second * 1000;
    const o = c.o;
    c.out[o - 4] = 48 + Math.floor(ms / 100);
    c.out[o - 3] = 48 + (Math.floor(ms / 10) % 10);
    c.out[o - 2] = 48 + (ms % 10);
    put(c, KEY);
    if (keyLength < 0) put(c, NULL);
    // A key of valid UTF-8 is its text; any other, its hex.
    else if (!putUtf8Json(c, b, keyStart, keyStart + keyLength)) {
      put(c, HEX_KEY);
      putAscii(c, b.toString('hex', keyStart, keyStart + keyLength));
      putAscii(c, '"}');
    }
    put(c, VALUE);
    c.src = b;
    c.at = valueStart + 5;
    c.end = valueStart + valueLength;
    transcode(c);
    // Trailing bytes: the decoder refuses the record.
    if (c.at !== c.end) throw BAIL;
    if (sameHeaders) {
      room(c, this.#lastHeaderTextLength);
      this.#lastHeaderText.copy(c.out, c.o, 0, this.#lastHeaderTextLength);
      c.o += this.#lastHeaderTextLength;
    } else if (this.#headers) {
      const from = c.o;
      put(c, HEADERS);
      this.#headerIndex = 0;
      this.#headerSource = b;
      if (r.headerCount > 0) r.eachHeader(this.#header);
      putAscii(c, ']');
      this.#keepHeaders(b, r, c.out, from, c.o);
    }
    put(c, END);
  }

  /** Whether `b[start, end)` are the bytes of the last headers kept (#keepHeaders), `count` of them. */
  #sameHeaders(b: Buffer, start: number, end: number, count: number): boolean {
    const length = end - start;
    if (length !== this.#lastHeaderLength || count !== this.#lastHeaderCount) return false;
    if (b !== this.#sourceOf) {
      this.#source = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.#sourceOf = b;
    }
    // Four bytes at a time (a byte loop cost as much as writing the headers), then the rest.
    const source = this.#source;
    const kept = this.#lastHeaderView;
    let i = 0;
    for (; i + 4 <= length; i += 4) if (source.getInt32(start + i) !== kept.getInt32(i)) return false;
    for (; i < length; i++) if (b[start + i] !== this.#lastHeaderBytes[i]) return false;
    return true;
  }

  /** Keeps a record's headers (as fetched, and as written: out[from, to)) for the records after it (#sameHeaders). */
  #keepHeaders(b: Buffer, r: RecordView, out: Buffer, from: number, to: number): void {
    const length = r.end - r.headersStart;
    if (r.headerCount === 0 || length > MAX_CACHED_HEADER_BYTES) {
      this.#lastHeaderLength = -1;
      return;
    }
    if (to - from > this.#lastHeaderText.length) this.#lastHeaderText = Buffer.allocUnsafeSlow(to - from);
    b.copy(this.#lastHeaderBytes, 0, r.headersStart, r.end);
    out.copy(this.#lastHeaderText, 0, from, to);
    this.#lastHeaderLength = length;
    this.#lastHeaderCount = r.headerCount;
    this.#lastHeaderTextLength = to - from;
  }

  /** `["name","value"]` as JSON.stringify writes the decoded pair (name and value as UTF-8 text, a null name as '', null kept). */
  #headerPair(nameStart: number, nameLength: number, valueStart: number, valueLength: number): void {
    const c = this.#cursor;
    const b = this.#headerSource;
    put(c, this.#headerIndex++ > 0 ? NEXT_PAIR : OPEN_BRACKET);
    if (nameLength < 0) put(c, EMPTY_STRING);
    else putUtf8String(c, b, nameStart, nameStart + nameLength);
    putAscii(c, ',');
    if (valueLength < 0) put(c, NULL);
    else putUtf8String(c, b, valueStart, valueStart + valueLength);
    putAscii(c, ']');
  }
}

/** The record's offset in decimal, without a bigint or a string while it is a safe integer (always, in practice). */
function putOffset(c: Cursor, r: RecordView): void {
  if (r.baseOffsetNumber < 0) putAscii(c, r.offset.toString());
  else putInteger(c, r.baseOffsetNumber + r.offsetDelta);
}
