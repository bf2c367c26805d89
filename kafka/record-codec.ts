import type { MessageToProduce, RecordsBatch } from '@platformatic/kafka';
import type { KafkaRecord, OutgoingRecord, PartitionBatch, RecordHeaders } from './types.ts';

/**
 * The seam's one record codec: every read (PartitionReader, GroupConsumer, so
 * tail, the read path, the console, workers, the registry store, bridges, dead
 * letters) turns the client's fetched batches into KafkaRecords with
 * decodePartition, and every write (KafkaProducer, the workers' plain and
 * transactional outputs) turns OutgoingRecords into the client's messages with
 * toClientMessage. So a record reads the same everywhere and writes back as it
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

/** The part of one partition of a Fetch response the codec reads (the client exports no type for it). */
export interface FetchedPartition {
  highWatermark: bigint;
  lastStableOffset: bigint;
  abortedTransactions?: ReadonlyArray<{ producerId: bigint; firstOffset: bigint }> | null;
  records?: readonly RecordsBatch[] | null;
}

/** A record batch written by a transactional producer (attributes bit 4). */
const IS_TRANSACTIONAL = 1 << 4;
/** A batch holding one commit or abort marker (attributes bit 5). */
const IS_CONTROL = 1 << 5;

const NO_HEADERS: RecordHeaders = Object.freeze([]) as unknown as RecordHeaders;

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

  /** True when `batch` (ending at `last`) is a control batch or belongs to an aborted transaction. */
  skip(batch: { attributes: number; producerId: bigint; records: ReadonlyArray<{ key: Buffer | null }> }, last: bigint): boolean {
    while (this.#pending.length > 0 && this.#pending[0]!.firstOffset <= last) this.#open.add(this.#pending.shift()!.producerId);
    if (batch.attributes & IS_CONTROL) {
      // The control record's key: version (int16), type (int16; 0 = abort, 1 = commit).
      if (batch.records[0]?.key?.readInt16BE(2) === 0) this.#open.delete(batch.producerId);
      return true;
    }
    return (batch.attributes & IS_TRANSACTIONAL) !== 0 && this.#open.has(batch.producerId);
  }
}

/** The client's header pairs as Sluice's: names as UTF-8 strings, every pair in order, null values kept. */
export function fromClientHeaders(raw: ReadonlyArray<readonly [Buffer | null, Buffer | null]>): RecordHeaders {
  if (raw.length === 0) return NO_HEADERS;
  const headers = new Array<readonly [string, Buffer | null]>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const [name, value] = raw[i]!;
    headers[i] = [name === null ? '' : name.toString('utf8'), value];
  }
  return headers;
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
  const records: KafkaRecord[] = [];
  let nextOffset = from;
  let leaderEpoch = -1;
  const batches = fetched.records ?? [];
  const aborted = new AbortedTransactions(readCommitted ? fetched.abortedTransactions : null);
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (last >= nextOffset) nextOffset = last + 1n;
    if (aborted.skip(batch, last)) continue;
    leaderEpoch = batch.partitionLeaderEpoch;
    const { firstOffset, firstTimestamp } = batch;
    for (const r of batch.records) {
      const offset = firstOffset + BigInt(r.offsetDelta);
      if (offset < from) continue;
      records.push({
        topic,
        partition,
        offset,
        key: r.key,
        value: r.value,
        headers: r.headers.length === 0 ? NO_HEADERS : fromClientHeaders(r.headers),
        timestamp: firstTimestamp + r.timestampDelta,
      });
    }
  }
  return { topic, partition, records, nextOffset, highWatermark: fetched.highWatermark, lastStableOffset: fetched.lastStableOffset, leaderEpoch };
}

type ClientHeaders = Map<Buffer, Buffer>;
const clientHeaders = new WeakMap<RecordHeaders, ClientHeaders>();

/**
 * Sluice's header pairs as the client's header map. The client writes a Map's
 * entries in insertion order and keys it by identity, so every pair gets a
 * fresh name Buffer: a name that repeats keeps every value, in order. A null
 * value is written as null. One map per pairs list (the ingress gives every
 * record of a request the same list; the client only reads it).
 */
export function toClientHeaders(headers: RecordHeaders | undefined): ClientHeaders | undefined {
  if (headers === undefined || headers.length === 0) return undefined;
  let map = clientHeaders.get(headers);
  if (map === undefined) {
    map = new Map();
    // The client's header type has no null value; its writer writes null as Kafka's null (length -1).
    for (const [name, value] of headers) map.set(Buffer.from(name, 'utf8'), value as Buffer);
    clientHeaders.set(headers, map);
  }
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
