import { routeByLeader, type ProduceApi } from './produce-routing.ts';
import { createAPI, crc32c, kGetApi, produceV10, produceV11, produceV9, Producer, Writer, type API, type Callback, type CreateRecordsBatchOptions, type MessageRecord } from '@platformatic/kafka';

/**
 * Produce requests (v9–v11, the flexible versions; one shape) written in one
 * pass into one Buffer. The client builds every record from about twenty small
 * Buffers (one per varint), gathers them in lists that are appended to each
 * other, then joins them twice (once for the CRC, once for the socket): for a
 * request of 10,000 records that was a fifth of the ingress's CPU. Here the
 * sizes are computed first, one Buffer is allocated, and every field is
 * written in place. The bytes are the client's: same attributes, producer id,
 * epoch, sequences and timestamps (tests/unit/kafka-produce-request.test.ts compares
 * them). Compressed batches are left to the client (it owns the codecs).
 */

const RECORD_BATCH_OVERHEAD = 61; // baseOffset 8, length 4, leaderEpoch 4, magic 1, crc 4, attributes 2, lastOffsetDelta 4, timestamps 16, producer id 8, epoch 2, sequence 4, count 4
const CRC_START = 21; // attributes onwards are covered by the CRC
const IS_TRANSACTIONAL = 0b1_0000;
const MAGIC = 2;

function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);

function writeUvarint(buffer: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    buffer[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buffer[offset++] = n;
  return offset;
}

const bytesSize = (b: Buffer | null | undefined): number => (b == null ? 1 : uvarintSize(zigzag(b.length)) + b.length);

function writeBytes(buffer: Buffer, offset: number, b: Buffer | null | undefined): number {
  if (b == null) return writeUvarint(buffer, offset, 1); // zigzag(-1)
  offset = writeUvarint(buffer, offset, zigzag(b.length));
  return offset + b.copy(buffer, offset);
}

interface PartitionPlan {
  partition: number;
  messages: MessageRecord[];
  /** Each record's body size (what its length prefix says). */
  bodies: number[];
  /** Each record's headers as written (count, then each name and value). */
  headers: Buffer[];
  /** The record batch's size, from baseOffset to its last record. */
  batchSize: number;
}

interface TopicPlan {
  topic: string;
  name: Buffer;
  partitions: PartitionPlan[];
}

const NO_HEADERS = Buffer.from([0]); // zigzag(0): no header

type HeaderMap = NonNullable<MessageRecord['headers']>;

/**
 * Headers as written, once per run of records with the same pairs: the ingress gives every record of a request the
 * same name and value Buffers, so a request's records share one encoding instead of sizing and writing every pair
 * of every record twice. The client copies each message's headers into a map of its own, so the pairs are compared
 * (by identity), not the maps.
 */
class HeaderSections {
  #map: HeaderMap | undefined;
  /** The last encoded pairs, name and value in turn. */
  #pairs: (Buffer | null | undefined)[] = [];
  #bytes = NO_HEADERS;

  of(headers: HeaderMap | undefined): Buffer {
    if (headers === undefined || headers.size === 0) return NO_HEADERS;
    if (headers === this.#map) return this.#bytes;
    if (this.#same(headers)) {
      this.#map = headers;
      return this.#bytes;
    }
    const pairs: (Buffer | null | undefined)[] = [];
    let size = uvarintSize(zigzag(headers.size));
    for (const [name, value] of headers) {
      size += bytesSize(name) + bytesSize(value);
      pairs.push(name, value);
    }
    const bytes = Buffer.allocUnsafe(size);
    let o = writeUvarint(bytes, 0, zigzag(headers.size));
    for (const [name, value] of headers) o = writeBytes(bytes, writeBytes(bytes, o, name), value);
    this.#map = headers;
    this.#pairs = pairs;
    this.#bytes = bytes;
    return bytes;
  }

  #same(headers: HeaderMap): boolean {
    const pairs = this.#pairs;
    if (pairs.length !== 2 * headers.size) return false;
    let i = 0;
    for (const [name, value] of headers) {
      if (pairs[i] !== name || pairs[i + 1] !== value) return false;
      i += 2;
    }
    return true;
  }
}

/** A record's timestamp delta: BigInt arithmetic only when it differs from the batch's first (in the ingress it rarely does). */
const timestampDelta = (timestamp: bigint, first: bigint): number => (timestamp === first ? 0 : Number(timestamp - first));

function plan(messages: readonly MessageRecord[]): TopicPlan[] {
  const sections = new HeaderSections();
  const topics = new Map<string, Map<number, MessageRecord[]>>();
  for (const m of messages) {
    let partitions = topics.get(m.topic);
    if (partitions === undefined) topics.set(m.topic, (partitions = new Map()));
    const p = m.partition ?? 0;
    const list = partitions.get(p);
    if (list === undefined) partitions.set(p, [m]);
    else list.push(m);
  }
  const out: TopicPlan[] = [];
  for (const [topic, partitions] of topics) {
    const planned: PartitionPlan[] = [];
    // Ascending partitions, as the client orders them (the broker does not mind; the byte-for-byte test does).
    for (const [partition, list] of [...partitions].sort((a, b) => a[0] - b[0])) {
      const first = list[0]!.timestamp!;
      const bodies = new Array<number>(list.length);
      const headers = new Array<Buffer>(list.length);
      let batchSize = RECORD_BATCH_OVERHEAD;
      for (let i = 0; i < list.length; i++) {
        const m = list[i]!;
        const section = (headers[i] = sections.of(m.headers));
        const body = 1 + uvarintSize(zigzag(timestampDelta(m.timestamp!, first))) + uvarintSize(zigzag(i)) + bytesSize(m.key) + bytesSize(m.value) + section.length;
        bodies[i] = body;
        batchSize += uvarintSize(zigzag(body)) + body;
      }
      planned.push({ partition, messages: list, bodies, headers, batchSize });
    }
    out.push({ topic, name: Buffer.from(topic, 'utf8'), partitions: planned });
  }
  return out;
}

function writeBatch(buffer: Buffer, start: number, p: PartitionPlan, topic: string, options: Partial<CreateRecordsBatchOptions>): number {
  const { messages, bodies, headers } = p;
  const first = messages[0]!.timestamp!;
  let max = first;
  for (const m of messages) if (m.timestamp! > max) max = m.timestamp!;
  buffer.writeBigInt64BE(0n, start);
  buffer.writeInt32BE(p.batchSize - 12, start + 8);
  buffer.writeInt32BE(options.partitionLeaderEpoch ?? 0, start + 12);
  buffer.writeInt8(MAGIC, start + 16);
  buffer.writeInt16BE(options.transactionalId ? IS_TRANSACTIONAL : 0, start + 21);
  buffer.writeInt32BE(messages.length - 1, start + 23);
  buffer.writeBigInt64BE(first, start + 27);
  buffer.writeBigInt64BE(max, start + 35);
  buffer.writeBigInt64BE(options.producerId ?? -1n, start + 43);
  buffer.writeInt16BE(options.producerEpoch ?? 0, start + 51);
  buffer.writeInt32BE(options.sequences ? options.sequences.getWithDefault(`${topic}:${p.partition}`, 0) : 0, start + 53);
  buffer.writeInt32BE(messages.length, start + 57);
  let o = start + RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    o = writeUvarint(buffer, o, zigzag(bodies[i]!));
    buffer[o++] = 0; // record attributes
    o = writeUvarint(buffer, o, zigzag(timestampDelta(m.timestamp!, first)));
    o = writeUvarint(buffer, o, zigzag(i));
    o = writeBytes(buffer, o, m.key);
    o = writeBytes(buffer, o, m.value);
    const section = headers[i]!;
    if (section.length === 1) buffer[o++] = section[0]!;
    else o += section.copy(buffer, o);
  }
  buffer.writeUInt32BE(crc32c(buffer.subarray(start + CRC_START, o)), start + 17);
  return o;
}

/** The request body (after the request header) of Produce v9–v11 for `messages`, uncompressed. */
export function encodeProduceRequest(acks: number, timeout: number, messages: MessageRecord[], options: Partial<CreateRecordsBatchOptions>): Buffer {
  const now = BigInt(Date.now());
  for (const m of messages) {
    m.partition ??= 0;
    m.timestamp ??= now;
  }
  const topics = plan(messages);
  const transactionalId = options.transactionalId == null ? null : Buffer.from(options.transactionalId, 'utf8');
  let size = (transactionalId ? uvarintSize(transactionalId.length + 1) + transactionalId.length : 1) + 2 + 4 + uvarintSize(topics.length + 1) + 1;
  for (const t of topics) {
    size += uvarintSize(t.name.length + 1) + t.name.length + uvarintSize(t.partitions.length + 1) + 1;
    for (const p of t.partitions) size += 4 + uvarintSize(p.batchSize + 1) + p.batchSize + 1;
  }
  const buffer = Buffer.allocUnsafe(size);
  let o = 0;
  if (transactionalId) {
    o = writeUvarint(buffer, o, transactionalId.length + 1);
    o += transactionalId.copy(buffer, o);
  } else buffer[o++] = 0;
  o = buffer.writeInt16BE(acks, o);
  o = buffer.writeInt32BE(timeout, o);
  o = writeUvarint(buffer, o, topics.length + 1);
  for (const t of topics) {
    o = writeUvarint(buffer, o, t.name.length + 1);
    o += t.name.copy(buffer, o);
    o = writeUvarint(buffer, o, t.partitions.length + 1);
    for (const p of t.partitions) {
      o = buffer.writeInt32BE(p.partition, o);
      o = writeUvarint(buffer, o, p.batchSize + 1);
      o = writeBatch(buffer, o, p, t.topic, options);
      buffer[o++] = 0; // partition's tagged fields
    }
    buffer[o++] = 0; // topic's tagged fields
  }
  buffer[o++] = 0; // request's tagged fields
  if (o !== size) throw new Error(`produce request sized ${size} bytes, written ${o}`);
  return buffer;
}

function createRequest(acks = 1, timeout = 0, messages: MessageRecord[], options: Partial<CreateRecordsBatchOptions> = {}): Writer {
  if ((options.compression ?? 'none') !== 'none') return produceV11.createRequest(acks, timeout, messages, options);
  const writer = Writer.create().append(encodeProduceRequest(acks, timeout, messages, options));
  if (acks === 0) writer.context.noResponse = true;
  return writer;
}

/** Produce v9–v11 with the one-pass encoder and the client's own response parser of each version. */
export const PRODUCE_APIS: ReadonlyMap<number, ReturnType<typeof createAPI>> = new Map(
  (
    [
      [9, produceV9],
      [10, produceV10],
      [11, produceV11],
    ] as const
  ).map(([version, api]) => [version, createAPI(0, version, createRequest as never, api.parseResponse as never)]),
);

/**
 * The client's producer, with Produce requests written by encodeProduceRequest and each record sent to its own
 * partition's leader (kafka/produce-routing.ts: the client's retry sends a group to one broker).
 */
export class OnePassProducer<Key, Value, HeaderKey, HeaderValue> extends Producer<Key, Value, HeaderKey, HeaderValue> {
  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType>(name: string, callback: Callback<API<RequestArguments, ResponseType>>): void {
    if (name !== 'Produce') {
      super[kGetApi](name, callback);
      return;
    }
    super[kGetApi]<RequestArguments, ResponseType>(name, (error, api) => {
      if (error || api === undefined) callback(error, api as never);
      else callback(null, routeByLeader((PRODUCE_APIS.get(api.version) ?? api) as unknown as ProduceApi, this) as unknown as API<RequestArguments, ResponseType>);
    });
  }
}
