import { compressionsAlgorithmsByBitmask, UnsupportedCompressionError, type MessageToProduce } from '@platformatic/kafka';
import type { KafkaRecord, OutgoingRecord, PartitionBatch, RecordHeaders, RecordView as RecordViewType } from './types.ts';

/**
 * The seam's one record codec: every read (PartitionReader, GroupConsumer, so
 * tail, the read path, the console, workers, the registry store, bridges, dead
 * letters) walks the record batches a fetch returned as bytes (RawFetchConsumer)
 * with FetchedRecords, either in place (RecordView: the tail's and the read
 * path's NDJSON) or into KafkaRecords (decodePartition), and every write
 * (KafkaProducer, the workers' plain and transactional outputs) turns
 * OutgoingRecords into the client's messages with toClientMessage. So a record reads the same everywhere and writes back as it
 * was read.
 *
 * Headers follow Kafka's semantics: a list of (name, value) pairs, a name may
 * repeat, every value is kept in order. Kafka's record format makes the name a
 * non-null string and lets the value be null (the Java client's
 * `Header.value()` may return null; kcat writes one for `-H name` without `=`).
 * So a null value stays null, distinct from an empty one (`-H name=`), on the
 * way in and on the way out. A null name cannot be written by Kafka's clients
 * (the Java client refuses such a record as corrupt); should a broker hand one
 * over, it becomes the empty name '' rather than dropping the header's value.
 */

/** The part of one partition of a Fetch response the codec reads: its record batches as fetched (RawFetchConsumer). */
export interface FetchedPartition {
  highWatermark: bigint;
  lastStableOffset: bigint;
  abortedTransactions?: ReadonlyArray<{ producerId: bigint; firstOffset: bigint }> | null;
  records?: FetchedBytes;
}

/** Compression codec (attributes bits 0-2). */
const COMPRESSION = 0b111;
/** A record batch written by a transactional producer (attributes bit 4). */
const IS_TRANSACTIONAL = 1 << 4;
/** A batch holding one commit or abort marker (attributes bit 5). */
const IS_CONTROL = 1 << 5;
/** baseOffset (8) and batchLength (4): the part of a batch its length does not count. */
const LOG_OVERHEAD = 12;
/** Where the records start: baseOffset 8, length 4, leaderEpoch 4, magic 1, crc 4, attributes 2, lastOffsetDelta 4, timestamps 16, producer id 8, epoch 2, sequence 4, count 4. */
const RECORDS_START = 61;
/** Where a batch's first timestamp lies in its header. */
const FIRST_TIMESTAMP = 27;
/** Base offsets up to here are numbers (RecordView.baseOffsetNumber): 2^53 minus the largest offset delta, 2^31, so base plus delta is exact. */
const SAFE_BASE_OFFSET = Number.MAX_SAFE_INTEGER - 2 ** 31;
const SAFE_BASE_OFFSET_BIG = BigInt(SAFE_BASE_OFFSET);
/** The largest high word of a base offset at or below SAFE_BASE_OFFSET. */
const SAFE_HIGH_WORD = Math.floor(SAFE_BASE_OFFSET / 2 ** 32) - 1;
/** A control batch's record that is neither marker (or is unreadable). */
const NOT_A_MARKER = -1;
const ABORT_MARKER = 0;

const NO_HEADERS: RecordHeaders = Object.freeze([]) as unknown as RecordHeaders;
const EMPTY = Buffer.alloc(0);

/**
 * read_committed: the broker returns records up to the last stable offset and
 * lists the aborted transactions among them; the reader drops their batches
 * (as the Java client does). The client filters these too, but keeps an aborted
 * transaction whose abort marker is not in the same response ("for safety"),
 * which would hand aborted records to an exactly-once reader: the broker lists
 * only transactions that were aborted, so everything of that producer from the
 * transaction's first offset up to its abort marker is dropped here.
 */
export class AbortedTransactions {
  readonly #pending: { producerId: bigint; firstOffset: bigint }[];
  readonly #open = new Set<bigint>();

  constructor(list: ReadonlyArray<{ producerId: bigint; firstOffset: bigint }> | null | undefined) {
    this.#pending = list ? [...list].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0)) : [];
  }

  /**
   * True when a batch (its attributes and producer, ending at `last`) is a control batch or belongs to an aborted
   * transaction. `marker` is a control batch's marker type (0 abort, 1 commit).
   */
  skip(attributes: number, producerId: bigint, last: bigint, marker: number = NOT_A_MARKER): boolean {
    while (this.#pending.length > 0 && this.#pending[0]!.firstOffset <= last) this.#open.add(this.#pending.shift()!.producerId);
    if (attributes & IS_CONTROL) {
      if (marker === ABORT_MARKER) this.#open.delete(producerId);
      return true;
    }
    return (attributes & IS_TRANSACTIONAL) !== 0 && this.#open.has(producerId);
  }
}

// The varint readers advance this position (one module field instead of a result object per field).
let at = 0;

/** An unsigned varint of up to 35 bits (a record's lengths and counts are zigzag int32). */
function varint(b: Buffer): number {
  let byte = b[at++]!;
  if (byte < 0x80) return (byte >>> 1) ^ -(byte & 1);
  let value = byte & 0x7f;
  let shift = 7;
  do {
    byte = b[at++]!;
    if (byte === undefined || shift > 28) throw new Error('corrupt record batch: varint past its bounds');
    value |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte >= 0x80);
  return (value >>> 1) ^ -(value & 1);
}

/** A zigzag varlong (the timestamp delta) as a number: exact up to 2^53, which no millisecond delta reaches. */
function varlong(b: Buffer): number {
  let byte = b[at++]!;
  if (byte < 0x80) return byte % 2 === 0 ? byte / 2 : -(byte + 1) / 2;
  let value = byte & 0x7f;
  let scale = 128;
  do {
    byte = b[at++]!;
    if (byte === undefined || scale > 2 ** 63) throw new Error('corrupt record batch: varlong past its bounds');
    value += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte >= 0x80);
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/**
 * A fetched record where it lies: fields are positions in `buffer` (the fetched bytes, or a decompressed batch).
 * One instance is reused for every record a walk visits, so a visitor reads it during its call and copies what it
 * keeps (toRecord builds the KafkaRecord every other reader gets).
 */
export class RecordView implements RecordViewType {
  buffer: Buffer = EMPTY;
  /** The batch's base offset as a number, or -1 past SAFE_BASE_OFFSET (then read from its header as a bigint). */
  baseOffsetNumber = 0;
  /** Where the batch's header lies (in the fetched bytes): its base offset and first timestamp as Kafka has them. */
  header: Buffer = EMPTY;
  headerAt = 0;
  offsetDelta = 0;
  /** The batch's first timestamp as a number of milliseconds. */
  firstTimestampMs = 0;
  timestampDelta = 0;
  keyStart = 0;
  /** -1: a null key. */
  keyLength = -1;
  valueStart = 0;
  /** -1: a null value. */
  valueLength = -1;
  headersStart = 0;
  headerCount = 0;
  end = 0;

  get baseOffset(): bigint {
    return this.baseOffsetNumber >= 0 ? BigInt(this.baseOffsetNumber) : this.header.readBigInt64BE(this.headerAt);
  }

  /** The batch's first timestamp, as Kafka has it. */
  get firstTimestamp(): bigint {
    return this.header.readBigInt64BE(this.headerAt + FIRST_TIMESTAMP);
  }

  get offset(): bigint {
    return this.baseOffset + BigInt(this.offsetDelta);
  }

  /** Epoch milliseconds. */
  get timestampMs(): number {
    return this.firstTimestampMs + this.timestampDelta;
  }

  get key(): Buffer | null {
    return this.keyLength < 0 ? null : this.buffer.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  get value(): Buffer | null {
    return this.valueLength < 0 ? null : this.buffer.subarray(this.valueStart, this.valueStart + this.valueLength);
  }

  /** Kafka's header pairs: every pair in order, names as UTF-8 text (a null name, which no client writes, as ''), null values kept. */
  get headers(): RecordHeaders {
    if (this.headerCount === 0) return NO_HEADERS;
    const b = this.buffer;
    at = this.headersStart;
    const headers = new Array<readonly [string, Buffer | null]>(this.headerCount);
    for (let i = 0; i < this.headerCount; i++) {
      const nameLength = varint(b);
      const name = nameLength < 0 ? '' : b.toString('utf8', at, at + nameLength);
      if (nameLength > 0) at += nameLength;
      const valueLength = varint(b);
      headers[i] = [name, valueLength < 0 ? null : b.subarray(at, at + valueLength)];
      if (valueLength > 0) at += valueLength;
    }
    return headers;
  }

  /**
   * Calls `visit` for each header in order with where its name and value lie in `buffer` (length -1: null), for an
   * output written from the bytes; `headers` gives them as pairs.
   */
  eachHeader(visit: (nameStart: number, nameLength: number, valueStart: number, valueLength: number) => void): void {
    const b = this.buffer;
    at = this.headersStart;
    for (let i = 0; i < this.headerCount; i++) {
      const nameLength = varint(b);
      const nameStart = at;
      if (nameLength > 0) at += nameLength;
      const valueLength = varint(b);
      const valueStart = at;
      if (valueLength > 0) at += valueLength;
      const resume = at;
      visit(nameStart, nameLength, valueStart, valueLength);
      at = resume;
    }
  }

  toRecord(topic: string, partition: number): KafkaRecord {
    return {
      topic,
      partition,
      offset: this.offset,
      key: this.key,
      value: this.value,
      headers: this.headers,
      timestamp: this.firstTimestamp + BigInt(this.timestampDelta),
    };
  }
}

/**
 * A record batch a reader may see: its records from `records` in `buffer` (decompressed), `count` of them; its header
 * at `header[headerAt]`. Numbers, not bigints: a fetch of one-record batches (what the ingress writes from single
 * events) made several bigints, two Buffer views and this object per record, a tenth of the tail's CPU.
 */
interface VisibleBatch {
  buffer: Buffer;
  records: number;
  end: number;
  count: number;
  header: Buffer;
  headerAt: number;
  /** RecordView.baseOffsetNumber. */
  baseOffset: number;
  firstTimestampMs: number;
  /** Records with a smaller offset delta lie before the fetch position. */
  skipBelow: number;
}

/**
 * One partition's fetched record batches, read in place: the batch headers are read (and compressed batches
 * decompressed) once, when it is made; `visit` walks the records without building an object per record. Control
 * batches, and with read_committed the batches of aborted transactions, are left out; records before the fetch
 * position (a fetch may start inside a batch) too.
 */
export class FetchedRecords {
  readonly #batches: VisibleBatch[] = [];
  readonly #view = new RecordView();
  readonly #aborted: AbortedTransactions;
  readonly #from: bigint;
  /** #from as a number, -1 past SAFE_BASE_OFFSET. */
  readonly #fromNumber: number;

  /** The offset after the last batch, as a number while every base offset is one (#nextBig: -1n), else as a bigint. */
  #next: number;
  #nextBig = -1n;
  #leaderEpoch = -1;

  /**
   * `bytes` are the partition's record batches as fetched: one Buffer, or the pieces they arrived in (socket
   * chunks, RawFetchConsumer). A batch inside one piece is read where it lies; only one spanning two is copied.
   */
  constructor(bytes: FetchedBytes, from: bigint, aborted: AbortedTransactions) {
    this.#from = from;
    this.#fromNumber = from >= 0n && from <= SAFE_BASE_OFFSET_BIG ? Number(from) : -1;
    this.#next = this.#fromNumber;
    if (this.#fromNumber < 0) this.#nextBig = from;
    this.#aborted = aborted;
    if (bytes === null || bytes === undefined) return;
    // One Buffer is one piece: a single walk serves both.
    const pieces: readonly Buffer[] = Array.isArray(bytes) ? bytes : [bytes as Buffer];
    let left = 0;
    for (const piece of pieces) left += piece.length;
    let index = 0;
    let position = 0;
    while (left >= LOG_OVERHEAD) {
      const piece = pieces[index]!;
      const inPiece = position + LOG_OVERHEAD <= piece.length;
      const size = inPiece ? batchSize(piece, position) : batchSize(span(pieces, index, position, LOG_OVERHEAD), 0);
      // A fetch stops at its size limit, possibly inside a batch: that one is fetched again, whole, next time.
      if (size > left) break;
      if (position + size <= piece.length) this.#add(piece, position, size);
      else this.#add(span(pieces, index, position, size), 0, size);
      left -= size;
      position += size;
      while (index < pieces.length && position >= pieces[index]!.length) position -= pieces[index++]!.length;
    }
  }

  get nextOffset(): bigint {
    return this.#nextBig >= 0n ? this.#nextBig : BigInt(this.#next);
  }

  /** That of the last data batch (-1 when there was none). */
  get leaderEpoch(): number {
    return this.#leaderEpoch;
  }

  /**
   * The batch at `bytes[at]`, `size` bytes: moves nextOffset past it, and keeps it unless it is a control batch or
   * aborted.
   */
  #add(bytes: Buffer, at: number, size: number): void {
    const magic = bytes[at + 16];
    if (magic !== 2) throw new Error(`unsupported record batch format (magic ${magic}): Sluice reads Kafka's v2 record batches`);
    const high = bytes.readInt32BE(at);
    const baseOffset = high >= 0 && high <= SAFE_HIGH_WORD ? high * 2 ** 32 + bytes.readUInt32BE(at + 4) : -1;
    const lastOffsetDelta = bytes.readInt32BE(at + 23);
    let skipBelow: number;
    if (baseOffset >= 0 && this.#nextBig < 0n) {
      const next = baseOffset + lastOffsetDelta + 1;
      if (next > this.#next) this.#next = next;
      skipBelow = this.#fromNumber > baseOffset ? this.#fromNumber - baseOffset : 0;
    } else {
      // Offsets past 2^53 - 2^31, which no log reaches in practice: bigints.
      const base = bytes.readBigInt64BE(at);
      const next = base + BigInt(lastOffsetDelta) + 1n;
      if (this.#nextBig < 0n) this.#nextBig = BigInt(this.#next);
      if (next > this.#nextBig) this.#nextBig = next;
      skipBelow = this.#from > base ? Number(this.#from - base) : 0;
    }
    const attributes = bytes.readInt16BE(at + 21);
    let buffer = bytes;
    let records = at + RECORDS_START;
    let recordsEnd = at + size;
    const compression = attributes & COMPRESSION;
    if (compression !== 0) {
      buffer = decompress(compression, bytes.subarray(records, recordsEnd));
      records = 0;
      recordsEnd = buffer.length;
    }
    // Only a control batch or a transactional one can be skipped (AbortedTransactions.skip): the others need no bigints.
    if (
      attributes & (IS_CONTROL | IS_TRANSACTIONAL) &&
      this.#aborted.skip(attributes, bytes.readBigInt64BE(at + 43), bytes.readBigInt64BE(at) + BigInt(lastOffsetDelta), attributes & IS_CONTROL ? markerType(buffer, records) : NOT_A_MARKER)
    )
      return;
    this.#leaderEpoch = bytes.readInt32BE(at + 12);
    this.#batches.push({
      buffer,
      records,
      end: recordsEnd,
      count: bytes.readInt32BE(at + 57),
      header: bytes,
      headerAt: at,
      baseOffset,
      // Milliseconds since 1970 are far below 2^53: the high word times 2^32 plus the low word is exact.
      firstTimestampMs: bytes.readInt32BE(at + FIRST_TIMESTAMP) * 2 ** 32 + bytes.readUInt32BE(at + FIRST_TIMESTAMP + 4),
      skipBelow,
    });
  }

  /** Calls `visitor` for each record in offset order, at most `limit` of them; returns how many it visited. */
  visit(visitor: (record: RecordView) => void, limit = Infinity): number {
    const r = this.#view;
    let visited = 0;
    for (const batch of this.#batches) {
      const b = batch.buffer;
      r.buffer = b;
      r.baseOffsetNumber = batch.baseOffset;
      r.header = batch.header;
      r.headerAt = batch.headerAt;
      r.firstTimestampMs = batch.firstTimestampMs;
      at = batch.records;
      for (let i = 0; i < batch.count; i++) {
        if (visited >= limit) return visited;
        const length = varint(b);
        const next = at + length;
        if (next > batch.end || length < 0) throw new Error('corrupt record batch: a record runs past its batch');
        at++; // attributes: unused
        r.timestampDelta = varlong(b);
        r.offsetDelta = varint(b);
        const keyLength = varint(b);
        r.keyStart = at;
        r.keyLength = keyLength;
        if (keyLength > 0) at += keyLength;
        const valueLength = varint(b);
        r.valueStart = at;
        r.valueLength = valueLength;
        if (valueLength > 0) at += valueLength;
        r.headerCount = varint(b);
        r.headersStart = at;
        r.end = next;
        if (at > next) throw new Error('corrupt record batch: a record runs past its length');
        if (r.offsetDelta >= batch.skipBelow) {
          visited++;
          visitor(r);
        }
        // The visitor may have read the headers (moving `at`): the record's length says where the next one starts.
        at = next;
      }
    }
    return visited;
  }
}

/** A partition's fetched bytes: one Buffer, or the pieces (in order) they arrived in; null when there were none. */
export type FetchedBytes = Buffer | readonly Buffer[] | null | undefined;

/** The size of the batch at `bytes[at]` (its length field and the 12 bytes before it); a batch too short to be one is corrupt. */
function batchSize(bytes: Buffer, at: number): number {
  const length = bytes.readInt32BE(at + 8);
  // Magic (at 16) must be readable; and a walk must always move on.
  if (length < 5) throw new Error(`corrupt record batch: length ${length}`);
  return LOG_OVERHEAD + length;
}

/** `length` bytes from `pieces[index][at]` on (there are that many): a view when they lie in one piece, else a copy. */
function span(pieces: readonly Buffer[], index: number, at: number, length: number): Buffer {
  const first = pieces[index]!;
  if (at + length <= first.length) return first.subarray(at, at + length);
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  for (let i = index; o < length; i++) {
    const piece = pieces[i]!;
    const from = i === index ? at : 0;
    const n = Math.min(piece.length - from, length - o);
    piece.copy(out, o, from, from + n);
    o += n;
  }
  return out;
}

/** The marker type of a control batch (its one record's key: version int16, type int16), or NOT_A_MARKER. */
function markerType(buffer: Buffer, records: number): number {
  at = records;
  varint(buffer); // length
  at++; // attributes
  varlong(buffer); // timestamp delta
  varint(buffer); // offset delta
  const keyLength = varint(buffer);
  return keyLength >= 4 ? buffer.readInt16BE(at + 2) : NOT_A_MARKER;
}

/** The client's codecs (gzip and zstd from node:zlib, snappy and lz4 from its WebAssembly), as the client reads them. */
function decompress(bitmask: number, compressed: Buffer): Buffer {
  const algorithm = (compressionsAlgorithmsByBitmask as Record<number, { decompressSync(data: Buffer): Buffer } | undefined>)[bitmask];
  if (algorithm === undefined) throw new UnsupportedCompressionError(`Unsupported compression algorithm with bitmask ${bitmask}`);
  return algorithm.decompressSync(compressed);
}

/** One partition of a Fetch response, read in place (FetchedRecords); `readCommitted` leaves out aborted transactions. */
export function fetchedRecords(fetched: FetchedPartition, from: bigint, readCommitted: boolean): FetchedRecords {
  return new FetchedRecords(fetched.records, from, new AbortedTransactions(readCommitted ? fetched.abortedTransactions : null));
}

/**
 * One partition of a Fetch response as a PartitionBatch: its records from
 * `from` on (a fetch may start inside a batch), in offset order, without
 * control records, and with `readCommitted` without the records of aborted
 * transactions. `nextOffset` moves past everything fetched, skipped batches
 * included, so the next fetch never returns them again. `leaderEpoch` is that
 * of the last data batch (-1 when there was none).
 */
export function decodePartition(topic: string, partition: number, from: bigint, fetched: FetchedPartition, readCommitted: boolean): PartitionBatch {
  return toPartitionBatch(topic, partition, fetched, fetchedRecords(fetched, from, readCommitted));
}

/** `scanned` (what fetchedRecords made of `fetched`) as a PartitionBatch of KafkaRecords. */
export function toPartitionBatch(topic: string, partition: number, fetched: FetchedPartition, scanned: FetchedRecords): PartitionBatch {
  const records: KafkaRecord[] = [];
  scanned.visit((r) => records.push(r.toRecord(topic, partition)));
  return { topic, partition, records, nextOffset: scanned.nextOffset, highWatermark: fetched.highWatermark, lastStableOffset: fetched.lastStableOffset, leaderEpoch: scanned.leaderEpoch };
}

type ClientHeaders = Map<Buffer, Buffer>;

/** Name Buffers by name, reused across maps: the ingress names the same few headers on every request. */
const headerNames = new Map<string, Buffer>();
/** Names kept at most: a writer copying arbitrary input headers must not grow the cache without bound. */
const MAX_HEADER_NAMES = 256;
/** The last list and its map: the records of one request, which share a list, are converted one after another. */
let lastHeaders: RecordHeaders | undefined;
let lastMap: ClientHeaders | undefined;

/**
 * Sluice's header pairs as the client's header map. The client writes a Map's entries in insertion order and keys
 * it by identity, so a name that repeats in one list gets a fresh name Buffer and keeps every value, in order. A
 * null value is written as null. One map per pairs list converted in a row (the ingress gives every record of a
 * request the same list; the client only reads it); a WeakMap per list cost a single-event request ~1 µs.
 */
export function toClientHeaders(headers: RecordHeaders | undefined): ClientHeaders | undefined {
  if (headers === undefined || headers.length === 0) return undefined;
  if (headers === lastHeaders) return lastMap;
  const map: ClientHeaders = new Map();
  for (const [name, value] of headers) {
    let key = headerNames.get(name);
    if (key === undefined || map.has(key)) {
      key = Buffer.from(name, 'utf8');
      if (headerNames.size < MAX_HEADER_NAMES && !headerNames.has(name)) headerNames.set(name, key);
    }
    // The client's header type has no null value; its writer writes null as Kafka's null (length -1).
    map.set(key, value as Buffer);
  }
  lastHeaders = headers;
  lastMap = map;
  return map;
}

/**
 * An OutgoingRecord as the client's message, on `partition` (the record's own
 * when not given; without either the client's partitioner chooses). A null key
 * or value is written as Kafka's null.
 */
export function toClientMessage(record: OutgoingRecord, partition: number | undefined = record.partition): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  // The client's type has no null value; its writer writes null as Kafka's null (length -1).
  const message: MessageToProduce<Buffer, Buffer, Buffer, Buffer> = { topic: record.topic, value: record.value as Buffer };
  if (partition !== undefined) message.partition = partition;
  if (record.key !== undefined && record.key !== null) message.key = record.key;
  if (record.timestamp !== undefined) message.timestamp = record.timestamp;
  const headers = toClientHeaders(record.headers);
  if (headers !== undefined) message.headers = headers;
  return message;
}
