import type { FetchedBatch, RecordView } from '../kafka/index.ts';
import type { RecordDecoder } from './decode.ts';
import { createFormatter, releaser, type Formatter } from './format.ts';
import { BAIL, constantWriter, NULL, OPEN_BRACKET, put, putAscii, putInteger, putText, putUtf8Json, putUtf8String, room, TranscodeBail, writeTo, type Cursor } from './transcode.ts';

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

const KEY = '","key":';
/** The line's fixed parts, each written by stores of constants (constantWriter). */
const putValueLabel = constantWriter(Buffer.from(',"value":'));
const putHeadersLabel = constantWriter(Buffer.from(',"headers":['));
const putEnd = constantWriter(Buffer.from('}\n'));
const putNull = constantWriter(NULL);
const putFirstPair = constantWriter(OPEN_BRACKET);
const putNextPair = constantWriter(Buffer.from(',['));
const putPairComma = constantWriter(Buffer.from(','));
const putCloseBracket = constantWriter(Buffer.from(']'));
const HEX_KEY = Buffer.from('{"hex":"');
const EMPTY_STRING = Buffer.from('""');
/** What the names of RULE_HEADERS begin with. */
const RULE_PREFIX = Buffer.from('__rule.');
/** Header lists longer than this (in bytes as fetched) are not kept past the encode that wrote them (NdjsonEncoder's #setKeptAside). */
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
  readonly #cursor: Cursor = { src: Buffer.alloc(0), at: 0, end: 0, out: Buffer.alloc(0), view: new DataView(new ArrayBuffer(0)), o: 0 };
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
   * header list that was written had none). Within one encode they are where they lie (the fetched bytes, the output
   * buffer): headers that differ from record to record (single events, each with its own correlation id) were copied
   * aside for every record, two Buffer copies that cost a sixth of the encoding and served no record after. encode
   * copies them aside once, at its end, as the output buffer goes back to be refilled.
   */
  #keptSource: Buffer = Buffer.alloc(0);
  /** A view of #keptSource, for #sameHeaders. */
  #keptView: DataView = new DataView(new ArrayBuffer(0));
  #keptStart = 0;
  /** -1: no headers kept. */
  #keptLength = -1;
  #keptCount = 0;
  #keptText: Buffer = Buffer.alloc(0);
  #keptTextStart = 0;
  #keptTextLength = 0;
  /** Where encode copies the kept headers' bytes and text aside. */
  readonly #ownBytes = Buffer.allocUnsafeSlow(MAX_CACHED_HEADER_BYTES);
  readonly #ownView = new DataView(this.#ownBytes.buffer, this.#ownBytes.byteOffset, MAX_CACHED_HEADER_BYTES);
  #ownText = Buffer.allocUnsafeSlow(1024);
  /** A view of the buffer the record being encoded lies in, for #sameHeaders. */
  #source: DataView = new DataView(new ArrayBuffer(0));
  #sourceOf: Buffer | undefined;
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
    writeTo(c, out);
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
      this.#setKeptAside();
      releaser(this.#free, c.out)();
      return undefined;
    }
    this.#setKeptAside();
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
    // Written headers are checked as they are written (#headerPair), in the same walk.
    if (r.headerCount > 0 && !this.#headers) {
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
      this.#lastIso = Buffer.from(`","timestamp":"${new Date(timestamp).toISOString()}${KEY}`);
      this.#lastSecond = second;
    }
    put(c, this.#lastIso);
    // The milliseconds: the three digits before the closing Z (and the key's label after it).
    const ms = timestamp - second * 1000;
    const o = c.o - KEY.length;
    c.out[o - 4] = 48 + Math.floor(ms / 100);
    c.out[o - 3] = 48 + (Math.floor(ms / 10) % 10);
    c.out[o - 2] = 48 + (ms % 10);
    if (keyLength < 0) putNull(c);
    // A key of valid UTF-8 is its text; any other, its hex.
    else if (!putUtf8Json(c, b, keyStart, keyStart + keyLength)) {
      put(c, HEX_KEY);
      putAscii(c, b.toString('hex', keyStart, keyStart + keyLength));
      putAscii(c, '"}');
    }
    putValueLabel(c);
    c.src = b;
    c.at = valueStart + 5;
    c.end = valueStart + valueLength;
    transcode(c);
    // Trailing bytes: the decoder refuses the record.
    if (c.at !== c.end) throw BAIL;
    if (sameHeaders) {
      const length = this.#keptTextLength;
      room(c, length);
      const text = this.#keptText;
      if (text === c.out) c.out.copyWithin(c.o, this.#keptTextStart, this.#keptTextStart + length);
      else text.copy(c.out, c.o, this.#keptTextStart, this.#keptTextStart + length);
      c.o += length;
    } else if (this.#headers) {
      const from = c.o;
      putHeadersLabel(c);
      this.#headerIndex = 0;
      this.#headerSource = b;
      this.#ruleHeaders = false;
      if (r.headerCount > 0) r.eachHeader(this.#header);
      if (this.#ruleHeaders) throw BAIL;
      putCloseBracket(c);
      this.#keepHeaders(b, r, c.out, from, c.o);
    }
    putEnd(c);
  }

  /** A view of `b` (the buffer the record being encoded lies in), made once per buffer. */
  #viewOf(b: Buffer): DataView {
    if (b !== this.#sourceOf) {
      this.#source = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.#sourceOf = b;
    }
    return this.#source;
  }

  /** Whether `b[start, end)` are the bytes of the last headers kept (#keepHeaders), `count` of them. */
  #sameHeaders(b: Buffer, start: number, end: number, count: number): boolean {
    const length = end - start;
    if (length !== this.#keptLength || count !== this.#keptCount) return false;
    const source = this.#viewOf(b);
    const keptSource = this.#keptSource;
    const kept = keptSource === b ? source : this.#keptView;
    const from = this.#keptStart;
    // Four bytes at a time (a byte loop cost as much as writing the headers), then the rest.
    let i = 0;
    for (; i + 4 <= length; i += 4) if (source.getInt32(start + i) !== kept.getInt32(from + i)) return false;
    for (; i < length; i++) if (b[start + i] !== keptSource[from + i]) return false;
    return true;
  }

  /** Keeps where a record's headers lie (as fetched, and as written: out[from, to)) for the records after it (#sameHeaders). */
  #keepHeaders(b: Buffer, r: RecordView, out: Buffer, from: number, to: number): void {
    if (r.headerCount === 0) {
      this.#keptLength = -1;
      return;
    }
    this.#keptSource = b;
    this.#keptView = this.#viewOf(b);
    this.#keptStart = r.headersStart;
    this.#keptLength = r.end - r.headersStart;
    this.#keptCount = r.headerCount;
    this.#keptText = out;
    this.#keptTextStart = from;
    this.#keptTextLength = to - from;
  }

  /**
   * Copies the kept headers' bytes and text aside, out of the buffers they lie in: the output buffer is refilled by a
   * later encode, and the fetched bytes are not this encoder's. Headers too long to be worth it are forgotten.
   */
  #setKeptAside(): void {
    if (this.#keptLength < 0 || this.#keptSource === this.#ownBytes) return;
    if (this.#keptLength > MAX_CACHED_HEADER_BYTES) {
      this.#keptLength = -1;
      return;
    }
    this.#keptSource.copy(this.#ownBytes, 0, this.#keptStart, this.#keptStart + this.#keptLength);
    this.#keptSource = this.#ownBytes;
    this.#keptView = this.#ownView;
    this.#keptStart = 0;
    if (this.#keptTextLength > this.#ownText.length) this.#ownText = Buffer.allocUnsafeSlow(this.#keptTextLength);
    this.#keptText.copy(this.#ownText, 0, this.#keptTextStart, this.#keptTextStart + this.#keptTextLength);
    this.#keptText = this.#ownText;
    this.#keptTextStart = 0;
  }

  /** `["name","value"]` as JSON.stringify writes the decoded pair (name and value as UTF-8 text, a null name as '', null kept). */
  #headerPair(nameStart: number, nameLength: number, valueStart: number, valueLength: number): void {
    const c = this.#cursor;
    const b = this.#headerSource;
    if (nameLength >= RULE_PREFIX.length) this.#noteRuleHeader(nameStart, nameLength);
    if (this.#headerIndex++ > 0) putNextPair(c);
    else putFirstPair(c);
    if (nameLength < 0) put(c, EMPTY_STRING);
    else putUtf8String(c, b, nameStart, nameStart + nameLength);
    putPairComma(c);
    if (valueLength < 0) putNull(c);
    else putUtf8String(c, b, valueStart, valueStart + valueLength);
    putCloseBracket(c);
  }
}

/** The record's offset in decimal, without a bigint or a string while it is a safe integer (always, in practice). */
function putOffset(c: Cursor, r: RecordView): void {
  if (r.baseOffsetNumber < 0) putAscii(c, r.offset.toString());
  else putInteger(c, r.baseOffsetNumber + r.offsetDelta);
}
