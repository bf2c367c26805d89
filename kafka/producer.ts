import { Producer, ProduceAcks, type MessageToProduce } from '@platformatic/kafka';
import type { SluiceConfig } from '../core/config.ts';
import { withDeadline } from '../core/deadline.ts';
import { BrokerUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RetryPolicy } from '../core/retry.ts';
import { splitByCounts } from '../core/arrays.ts';
import { OnePassProducer } from './produce-request.ts';
import { errorContext, producerOptions, routeClientEvents, transactionalIdentity } from './client-options.ts';
import { toSluiceError, type ErrorContext } from './errors.ts';
import { partitionForKey } from './partitioner.ts';
import { toClientMessage } from './record-codec.ts';
import type { Acks, OutgoingRecord, RecordMetadata } from './types.ts';

/**
 * Sluice's producer: raw bytes in, one RecordMetadata per record out. It picks
 * every record's partition itself (Kafka's murmur2 for keyed records, round
 * robin for the rest, or the one given), so each record's offset follows from
 * the per-partition base offsets of the response: base + the record's rank
 * among that partition's records in the send. One produce request is in
 * flight at a time; calls made meanwhile are merged into the next (see send).
 */

export interface ProducerSettings {
  /** Suffix of the client id. */
  name: string;
  retry: RetryPolicy;
  /** Default `all`. */
  acks?: Acks;
  /** Default true: a retried send is written once. Needs acks=all. */
  idempotent?: boolean;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** How long the broker waits for in-sync replicas before answering a produce with acks=all. */
  ackTimeoutMs?: number;
  /**
   * Longest a send() may take, retries included; then it fails with
   * SLUICE_BROKER_UNAVAILABLE. The client's retries nest (metadata inside a
   * produce inside a connect), so against a broker that accepts connections but
   * never answers only an overall deadline bounds a send. Records the client
   * still writes afterwards keep their order.
   */
  sendTimeoutMs?: number;
  /**
   * Makes this a transactional producer (for sendTransaction): initialising it
   * fences any other producer with the same id. Use the `transaction` retry policy.
   */
  transactionalId?: string;
}

type RawProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** Most records merged into one produce request from calls that waited for the previous one (~1 MB of orders). */
const MERGED_RECORDS = 10_000;

const ACKS: Record<Acks, number> = { all: ProduceAcks.ALL, leader: ProduceAcks.LEADER, none: ProduceAcks.NO_RESPONSE };

/** Where each record goes and its rank in its partition for this send. */
export interface Placement {
  partitions: Int32Array;
  ranks: Int32Array;
}

/**
 * Places records on partitions: the given partition, murmur2 of the key, or the
 * topic's round robin. Pure apart from the round-robin counters it advances.
 */
export class Placer {
  readonly #roundRobin = new Map<string, number>();

  place(records: readonly OutgoingRecord[], partitionCount: (topic: string) => number): Placement {
    const partitions = new Int32Array(records.length);
    const ranks = new Int32Array(records.length);
    // Records taken so far per partition, per topic. A send's records are nearly always of one topic, so the
    // look-ups happen when the topic changes, not per record (a string key per record was a tenth of placing).
    const taken = new Map<string, number[]>();
    let topic: string | undefined;
    let counts: number[] = [];
    let partitionsOfTopic = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (record.topic !== topic) {
        topic = record.topic;
        const found = taken.get(topic);
        if (found === undefined) taken.set(topic, (counts = []));
        else counts = found;
        partitionsOfTopic = -1;
      }
      let partition = record.partition;
      if (partition === undefined) {
        if (partitionsOfTopic < 0) partitionsOfTopic = partitionCount(topic);
        partition = record.key != null ? partitionForKey(record.key, partitionsOfTopic) : this.#next(topic, partitionsOfTopic);
      }
      partitions[i] = partition;
      const rank = counts[partition] ?? 0;
      counts[partition] = rank + 1;
      ranks[i] = rank;
    }
    return { partitions, ranks };
  }

  #next(topic: string, count: number): number {
    const next = ((this.#roundRobin.get(topic) ?? -1) + 1) % count;
    this.#roundRobin.set(topic, next);
    return next;
  }
}

/** Per-record metadata from the per-partition base offsets of a response. */
export function recordOffsets(records: readonly OutgoingRecord[], placement: Placement, bases: ReadonlyArray<{ topic: string; partition: number; offset: bigint }>): RecordMetadata[] {
  // Base offsets by topic, then by partition: no string key per record.
  const base = new Map<string, (bigint | undefined)[]>();
  for (const b of bases) {
    let list = base.get(b.topic);
    if (list === undefined) base.set(b.topic, (list = []));
    list[b.partition] = b.offset;
  }
  const out: RecordMetadata[] = new Array(records.length);
  let topic: string | undefined;
  let starts: (bigint | undefined)[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (record.topic !== topic) {
      topic = record.topic;
      starts = base.get(topic);
    }
    const partition = placement.partitions[i]!;
    const start = starts?.[partition];
    out[i] = { topic: record.topic, partition, offset: start === undefined ? -1n : start + BigInt(placement.ranks[i]!) };
  }
  return out;
}

export class KafkaProducer {
  readonly #client: RawProducer;
  readonly #acks: number;
  readonly #context: ErrorContext;
  readonly #placer = new Placer();
  readonly #idempotent: boolean;
  readonly #sendTimeoutMs: number | undefined;
  #waiting: { records: readonly OutgoingRecord[]; resolve: (metadata: RecordMetadata[]) => void; reject: (error: unknown) => void }[] = [];
  #sending = false;

  constructor(config: SluiceConfig, logger: Logger, settings: ProducerSettings) {
    const acks = settings.acks ?? 'all';
    const idempotent = settings.idempotent ?? acks === 'all';
    this.#client = new OnePassProducer<Buffer, Buffer, Buffer, Buffer>({
      ...producerOptions(config, {
        name: settings.name,
        retry: settings.retry,
        connectTimeoutMs: settings.connectTimeoutMs,
        requestTimeoutMs: settings.requestTimeoutMs,
        brokerTimeoutMs: settings.ackTimeoutMs,
      }),
      idempotent: idempotent || settings.transactionalId !== undefined,
      acks: ACKS[acks],
      ...(settings.transactionalId === undefined ? {} : transactionalIdentity(settings.transactionalId)),
    });
    routeClientEvents(this.#client, logger);
    this.#acks = ACKS[acks];
    this.#idempotent = idempotent || settings.transactionalId !== undefined;
    this.#sendTimeoutMs = settings.sendTimeoutMs;
    this.#context = errorContext(config);
  }

  /** Partition count of `topic` from the client's cached metadata (fetched when missing or older than 5 s). */
  async partitionCount(topic: string): Promise<number> {
    const counts = await this.partitionCounts([topic]);
    return counts.get(topic)!;
  }

  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    try {
      const metadata = await this.#client.metadata({ topics: [...topics] });
      return new Map(topics.map((t) => [t, metadata.topics.get(t)!.partitionsCount]));
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation: `metadata of ${topics.join(', ')}` });
    }
  }

  /**
   * Writes `records` (any topics, any partitions); their metadata in the same
   * order. One produce request is in flight at a time, and the calls that
   * arrive meanwhile go out together in the next one (up to MERGED_RECORDS), in
   * call order, so each partition keeps that order and a caller that keeps
   * several sends outstanding (the ingress's BatchingProducer) gets one large
   * request per round trip instead of a queue of small ones.
   */
  send(records: readonly OutgoingRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return Promise.resolve([]);
    const answered = new Promise<RecordMetadata[]>((resolve, reject) => this.#waiting.push({ records, resolve, reject }));
    if (!this.#sending) void this.#sendWaiting();
    return this.#sendTimeoutMs === undefined
      ? answered
      : withDeadline(answered, this.#sendTimeoutMs, () => {
          throw new BrokerUnavailableError(`Kafka did not acknowledge ${records.length} record(s) within ${this.#sendTimeoutMs} ms`);
        });
  }

  /**
   * One request at a time: with two idempotent sends in flight to a partition, @platformatic/kafka 2.12 was
   * seen to write the second before a retried first and to duplicate records (a fresh topic,
   * tests/integration/kafka-seam.test.ts). Kafka keeps up to 5 idempotent requests in order only for a client
   * that retries the later ones behind a failed earlier one under the same producer id and sequences (the Java
   * client does); this one does not. When request A fails on a partition and B, sent behind it, reaches that
   * partition with the sequence after A's, the broker answers B OUT_OF_ORDER_SEQUENCE_NUMBER, which the client
   * does not retry: it takes a new producer id (producer.js #recoverIdempotentProducer) and sends every record
   * of B again, so B's records on the partitions that had accepted them are written twice, and B's lands
   * before A's retry. The client itself allows an idempotent producer one request in flight per connection
   * (its constructor sets maxInflights to 1).
   */
  async #sendWaiting(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#waiting.length > 0) {
        let take = 1;
        let count = this.#waiting[0]!.records.length;
        while (take < this.#waiting.length && count + this.#waiting[take]!.records.length <= MERGED_RECORDS) count += this.#waiting[take++]!.records.length;
        const calls = this.#waiting.splice(0, take);
        const records = calls.length === 1 ? calls[0]!.records : calls.flatMap((c) => c.records);
        try {
          const metadata = await this.#produce(records);
          if (calls.length === 1) calls[0]!.resolve(metadata);
          else
            splitByCounts(
              metadata,
              calls.map((c) => c.records.length),
            ).forEach((slice, i) => calls[i]!.resolve(slice));
        } catch (error) {
          for (const call of calls) call.reject(error);
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  /** One produce request for `records`: their partitions, the request, and each record's offset from the response. */
  async #produce(records: readonly OutgoingRecord[]): Promise<RecordMetadata[]> {
    const topics = [...new Set(records.map((r) => r.topic))];
    const operation = `produce ${records.length} record(s) to ${topics.join(', ')}`;
    if (this.#idempotent) await this.#initialized(operation);
    const counts = records.some((r) => r.partition === undefined) ? await this.partitionCounts(topics) : undefined;
    const placement = this.#placer.place(records, (topic) => counts!.get(topic)!);
    const messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) messages[i] = toClientMessage(records[i]!, placement.partitions[i]!);
    try {
      const result = await this.#client.send({ messages });
      return recordOffsets(records, placement, this.#acks === ProduceAcks.NO_RESPONSE ? [] : (result.offsets ?? []));
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation });
    }
  }

  /**
   * Writes `records` in one transaction: read_committed readers see all of them
   * or none. On failure the transaction is aborted and the error rethrown.
   */
  async sendTransaction(records: readonly OutgoingRecord[]): Promise<void> {
    const topics = [...new Set(records.map((r) => r.topic))];
    const operation = `transaction of ${records.length} record(s) to ${topics.join(', ')}`;
    await this.#initialized(operation);
    const counts = records.some((r) => r.partition === undefined) ? await this.partitionCounts(topics) : undefined;
    const placement = this.#placer.place(records, (topic) => counts!.get(topic)!);
    let transaction: Awaited<ReturnType<RawProducer['beginTransaction']>> | undefined;
    try {
      transaction = await this.#client.beginTransaction();
      await transaction.send({ messages: records.map((r, i) => toClientMessage(r, placement.partitions[i]!)) });
      await transaction.commit();
    } catch (error) {
      await transaction?.abort().catch(() => undefined);
      throw toSluiceError(error, { ...this.#context, operation });
    }
  }

  /** Connects ahead of the first send: the producer id (when idempotent) and the metadata of `topics`. */
  async connect(topics: readonly string[]): Promise<void> {
    if (this.#idempotent) await this.#initialized('connect the producer');
    await this.partitionCounts(topics);
  }

  /** The producer id and epoch, fetched once before the first send (and again after a failed send reset them). */
  async #initialized(operation: string): Promise<void> {
    if (this.#client.producerId !== undefined) return;
    try {
      await this.#client.initIdempotentProducer({});
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation });
    }
  }

  async close(): Promise<void> {
    await this.#client.close(true);
  }
}
