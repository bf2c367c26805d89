import { isUtf8 } from 'node:buffer';
import type { KafkaRecord } from '../kafka/index.ts';
import type { RecordDecoder } from './decode.ts';
import { createFormatter, type Formatter } from './format.ts';
import { BAIL, put, putAscii, putText, putUtf8String, TranscodeBail, type Cursor } from './transcode.ts';

/** Smallest output buffer kept, so that small batches do not each allocate. */
const MIN_BUFFER = 1024 * 1024;

const NULL = Buffer.from('null');
const KEY = Buffer.from('","key":');
const VALUE = Buffer.from(',"value":');
const HEADERS = Buffer.from(',"headers":[');
const END = Buffer.from('}\n');
const HEX_KEY = Buffer.from('{"hex":"');

/**
 * A batch's records as NDJSON lines in one Buffer, written straight from the fetched bytes: the line the ndjson
 * formatter prints for the decoded record (same fields, order and text), without the decoded record, its value
 * object or its JSON string. Values go through their schema's transcoder (transcode.ts); a record it does not
 * cover (no transcoder for its schema, a framed key, malformed bytes: then the line says why) is decoded and
 * formatted as before. Buffers are kept and reused, as LineEncoder's: at most two, one being written while the
 * next is filled.
 */
export class NdjsonEncoder {
  readonly #decoder: RecordDecoder;
  readonly #headers: boolean;
  readonly #formatter: Formatter;
  readonly #free: Buffer[] = [];
  readonly #cursor: Cursor = { src: Buffer.alloc(0), at: 0, end: 0, out: Buffer.alloc(0), o: 0 };
  /** `{"topic":…,"partition":…,"offset":"` of the last record's topic and partition. */
  #prefix = { topic: '', partition: -1, bytes: Buffer.alloc(0) };
  // Records produced together share a millisecond; toISOString is a measurable share of a line.
  #lastTimestamp = Number.NaN;
  #lastIso = '';
  readonly #names = new Map<string, Buffer>();

  /** `decoder` must have prepared the records' schemas (RecordDecoder.prepare) before encode. */
  constructor(decoder: RecordDecoder, options: { headers: boolean }) {
    this.#decoder = decoder;
    this.#headers = options.headers;
    this.#formatter = createFormatter('ndjson', options);
  }

  /** `release` hands the buffer back: call it from the write's callback, once the bytes have left. */
  encode(records: readonly KafkaRecord[]): { bytes: Buffer; release: () => void } {
    const c = this.#cursor;
    let out = this.#free.pop();
    if (out === undefined) out = Buffer.allocUnsafeSlow(MIN_BUFFER);
    c.out = out;
    c.o = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const start = c.o;
      try {
        this.#line(c, record);
      } catch (error) {
        if (!(error instanceof TranscodeBail)) throw error;
        c.o = start;
        putText(c, this.#formatter.format(this.#decoder.decode(record)));
      }
    }
    const own = c.out;
    return {
      bytes: own.subarray(0, c.o),
      release: () => {
        if (this.#free.length < 2) this.#free.push(own);
      },
    };
  }

  #line(c: Cursor, record: KafkaRecord): void {
    const value = record.value;
    // Not framed: the decoding path names what is wrong with it.
    if (value === null || value.length < 5 || value[0] !== 0) throw BAIL;
    const transcode = this.#decoder.transcoder(value.readUInt32BE(1));
    if (transcode === undefined) throw BAIL;
    const key = record.key;
    // A framed key is decoded by its schema: the decoding path does that.
    if (key !== null && key.length >= 5 && key[0] === 0) throw BAIL;

    let prefix = this.#prefix;
    if (prefix.topic !== record.topic || prefix.partition !== record.partition) {
      prefix = this.#prefix = {
        topic: record.topic,
        partition: record.partition,
        bytes: Buffer.from(`{"topic":${JSON.stringify(record.topic)},"partition":${record.partition},"offset":"`),
      };
    }
    put(c, prefix.bytes);
    putAscii(c, record.offset.toString());
    const timestamp = Number(record.timestamp);
    if (timestamp !== this.#lastTimestamp) {
      this.#lastIso = new Date(timestamp).toISOString();
      this.#lastTimestamp = timestamp;
    }
    putAscii(c, '","timestamp":"');
    putAscii(c, this.#lastIso);
    put(c, KEY);
    if (key === null) put(c, NULL);
    else if (isUtf8(key)) putUtf8String(c, key, 0, key.length);
    else {
      put(c, HEX_KEY);
      putAscii(c, key.toString('hex'));
      putAscii(c, '"}');
    }
    put(c, VALUE);
    c.src = value;
    c.at = 5;
    c.end = value.length;
    transcode(c);
    // Trailing bytes: the decoder refuses the record.
    if (c.at !== c.end) throw BAIL;
    if (this.#headers) this.#headerList(c, record);
    put(c, END);
  }

  /** `"headers":[["name","value"],…]` as JSON.stringify writes the decoded pairs (values as UTF-8 text, null kept). */
  #headerList(c: Cursor, record: KafkaRecord): void {
    put(c, HEADERS);
    const headers = record.headers;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      let nameBytes = this.#names.get(name);
      if (nameBytes === undefined) {
        nameBytes = Buffer.from(`[${JSON.stringify(name)},`);
        // Header names are few in practice; a stream of distinct ones must not grow the cache without bound.
        if (this.#names.size < 1024) this.#names.set(name, nameBytes);
      }
      if (i > 0) putAscii(c, ',');
      put(c, nameBytes);
      if (value === null) put(c, NULL);
      else putUtf8String(c, value, 0, value.length);
      putAscii(c, ']');
    }
    putAscii(c, ']');
  }
}
