import { setTimeout as sleep } from 'node:timers/promises';
import { FetchIsolationLevels, ListOffsetTimestamps, type ClusterMetadata } from '@platformatic/kafka';
import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError, isRetryable, KafkaError, type SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retry, retryPolicies } from '../core/retry.ts';
import { KafkaAdmin, type PartitionWatermarks } from './admin.ts';
import { clientOptions, errorContext, routeClientEvents } from './client-options.ts';
import { toSluiceError, type ErrorContext } from './errors.ts';
import { RawFetchConsumer, type RawFetchedPartition, type RawFetchResponse } from './raw-fetch.ts';
import { decodePartition, fetchedRecords, toPartitionBatch, type FetchedRecords } from './record-codec.ts';
import type { FetchedBatch, KafkaRecord, PartitionBatch, TopicPartitionOffset } from './types.ts';

/**
 * A stateless reader: no consumer group, no commits. It reads the partitions it
 * is given from the offsets it is given and hands over one batch per partition
 * per fetch, as raw KafkaRecords (run) or read in place (runFetched: no object
 * per record, for an output written from the bytes). The next fetch from a
 * broker starts only once the handler has finished with the previous one
 * (backpressure without a promise per record). tail, the console's live tail, the registry store and
 * tests read through it.
 */

export type BatchHandler = (batch: PartitionBatch) => void | Promise<void>;
/** Receives each fetched batch read in place (no KafkaRecord per record): for an output written from the bytes. */
export type FetchedBatchHandler = (batch: FetchedBatch) => void | Promise<void>;

export interface PartitionReaderSettings {
  name: string;
  /** Skip records of aborted transactions and stop at the last stable offset. Default true. */
  readCommitted?: boolean;
  /** Longest the broker holds a fetch open when there is nothing new. Default 500 ms. */
  maxWaitMs?: number;
  /** Bytes the broker waits for (up to maxWaitMs) before it answers a fetch: more, for fewer fetches of a slowly growing topic. Default 1. */
  minBytes?: number;
  /** Most bytes per fetch (all partitions of a broker together). Default 16 MiB. */
  maxBytes?: number;
  /** Most bytes per partition per fetch. Default 4 MiB. */
  maxBytesPerPartition?: number;
}

const OFFSET_OUT_OF_RANGE = 'OFFSET_OUT_OF_RANGE';

type FetchResponse = RawFetchResponse;

/** One Fetch to one broker, as #send sends it; `key` names the broker and every partition's offset. */
interface FetchRequest {
  node: number;
  key: string;
  topics: { topicId: string; partitions: { partition: number; fetchOffset: bigint; currentLeaderEpoch: number; lastFetchedEpoch: number; partitionMaxBytes: number }[] }[];
  topicNames: Map<string, string>;
}

/** What one fetch brought of one assigned partition. */
interface Fetched {
  position: TopicPartitionOffset;
  topic: string;
  partition: RawFetchedPartition;
  scanned: FetchedRecords;
}

/** Hands one partition's fetched batch to run()'s or runFetched()'s handler. */
type Deliver = (topic: string, partition: number, fetched: RawFetchedPartition, scanned: FetchedRecords) => void | Promise<void>;

/** Offsets [start, end) of one partition. */
interface PartitionRange {
  topic: string;
  partition: number;
  start: bigint;
  end: bigint;
}

export class PartitionReader {
  readonly #client: RawFetchConsumer;
  /** For readToEnd(), readBetween() and an offset out of range: made on first use (a tail never needs it). */
  #adminClient: KafkaAdmin | undefined;
  readonly #log: Logger;
  readonly #context: ErrorContext;
  readonly #settings: Required<PartitionReaderSettings>;
  /** "topic\0partition" → next offset to fetch. */
  readonly #positions = new Map<string, TopicPartitionOffset>();
  #stopping = false;
  #running: Promise<void> | undefined;
  readonly #abort = new AbortController();
  /** Per broker, the fetch sent ahead while the previous answer was handled (#prefetch). */
  readonly #prefetched = new Map<number, { key: string; response: Promise<FetchResponse> }>();

  /** For ends() and readAt(): its own connections, since a broker answers one request per connection at a time and the reader's fetch may be waiting there for up to maxWaitMs. */
  #offsets: RawFetchConsumer | undefined;
  readonly #config: SluiceConfig;

  constructor(config: SluiceConfig, logger: Logger, settings: PartitionReaderSettings) {
    this.#settings = { readCommitted: true, maxWaitMs: 500, minBytes: 1, maxBytes: 16 * 1024 * 1024, maxBytesPerPartition: 4 * 1024 * 1024, ...settings };
    this.#client = this.#consumer(config, logger, settings.name);
    this.#config = config;
    this.#log = logger;
    this.#context = errorContext(config);
  }

  #consumer(config: SluiceConfig, logger: Logger, name: string): RawFetchConsumer {
    // A group id is required by the constructor; this reader never joins a group or commits.
    const client = new RawFetchConsumer({
      ...clientOptions(config, { name, retry: retryPolicies.reader }),
      groupId: `${config.clientId}-${name}-reader`,
      autocommit: false,
    });
    routeClientEvents(client, logger);
    return client;
  }

  get #admin(): KafkaAdmin {
    this.#adminClient ??= new KafkaAdmin(this.#config, this.#log, { name: `${this.#settings.name}-reader-admin` });
    return this.#adminClient;
  }

  #pointClient(): RawFetchConsumer {
    this.#offsets ??= this.#consumer(this.#config, this.#log, `${this.#settings.name}-offsets`);
    return this.#offsets;
  }

  /** Where to start each partition (the next offset to read). Partitions already assigned move to the new offset. */
  assign(positions: readonly TopicPartitionOffset[]): void {
    for (const p of positions) this.#positions.set(`${p.topic}\u0000${p.partition}`, { ...p });
    this.#client.topics.trackAll(...new Set(positions.map((p) => p.topic)));
  }

  /**
   * The low and high watermark of every partition of `topics`, by topic, partitions in order: where a reader may
   * start. Asked on the reader's own connection before it reads (one Metadata, then two ListOffsets sent together;
   * the fetches that follow use that metadata): an admin client opened a connection of its own for this and asked for
   * metadata three times, most of the time between a short `sluice tail` starting and its first record. Fails with
   * SLUICE_KAFKA_UNKNOWN_TOPIC, at once, for a topic that does not exist.
   */
  async watermarks(topics: readonly string[]): Promise<Map<string, PartitionWatermarks[]>> {
    const [low, high] = await this.#startOffsets(topics, [ListOffsetTimestamps.EARLIEST, ListOffsetTimestamps.LATEST]);
    return new Map([...high!].map(([topic, highs]) => [topic, highs.map((offset, partition) => ({ partition, low: low!.get(topic)?.[partition] ?? 0n, high: offset }))]));
  }

  /** By topic and partition, the first offset whose timestamp is at or after `timestamp` (epoch ms); -1 where there is none. */
  async offsetsAt(topics: readonly string[], timestamp: bigint): Promise<Map<string, Map<number, bigint>>> {
    const [found] = await this.#startOffsets(topics, [timestamp]);
    return new Map([...found!].map(([topic, offsets]) => [topic, new Map(offsets.map((offset, partition) => [partition, offset]))]));
  }

  /**
   * One ListOffsets per timestamp (read_uncommitted), all of `topics`' partitions. The metadata is the reader's own,
   * asked for when it holds none of `topics` younger than the client's metadataMaxAge (5 s), as its fetches do.
   */
  async #startOffsets(topics: readonly string[], timestamps: readonly bigint[]): Promise<Map<string, bigint[]>[]> {
    const list = [...new Set(topics)];
    const context = { ...this.#context, operation: `list the offsets of ${list.join(', ')}` };
    // The client retries a missing topic as if it were about to appear (autocreation); Sluice never autocreates, so
    // a missing topic fails at once and only transient errors are retried.
    const metadata = await retry(
      retryPolicies.admin,
      () =>
        this.#client.metadata({ topics: list, retries: 0 }).catch((error: unknown) => {
          throw toSluiceError(error, context);
        }),
      { retryable: (e) => isRetryable(e) && (e as SluiceError).code !== 'SLUICE_KAFKA_UNKNOWN_TOPIC' },
    );
    // An internal topic (__consumer_offsets) is answered but left out of the client's metadata, as the admin's topic
    // list leaves it out: one that cannot be read here (the client's ListOffsets would fail on it uncaught).
    const internal = list.find((topic) => metadata.topics.get(topic) === undefined);
    if (internal !== undefined) throw new KafkaError('SLUICE_KAFKA_UNKNOWN_TOPIC', `topic ${internal} does not exist`, { statusCode: 404, kafkaCode: 'UNKNOWN_TOPIC_OR_PARTITION' });
    try {
      return await Promise.all(timestamps.map((timestamp) => this.#client.listOffsets({ topics: list, timestamp, isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED })));
    } catch (error) {
      throw toSluiceError(error, context);
    }
  }

  /**
   * Where every assigned partition ends now: its last stable offset when the
   * reader reads committed records, else its high watermark. One ListOffsets
   * per leader on the cached metadata (refreshed only when a leader moved), so
   * it is cheap enough to ask per request.
   */
  async ends(): Promise<TopicPartitionOffset[]> {
    const partitions: Record<string, number[]> = {};
    for (const p of this.#positions.values()) (partitions[p.topic] ??= []).push(p.partition);
    const topics = Object.keys(partitions);
    if (topics.length === 0) return [];
    try {
      const offsets = await this.#pointClient().listOffsets({
        topics,
        partitions,
        isolationLevel: this.#settings.readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
      });
      return topics.flatMap((topic) => partitions[topic]!.map((partition) => ({ topic, partition, offset: offsets.get(topic)![partition]! })));
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation: `list the end offsets of ${topics.join(', ')}` });
    }
  }

  /**
   * The record at `offset` of a topic's partition (assigned or not), read
   * without waiting; undefined when there is none (compacted or deleted).
   */
  async readAt(topic: string, partition: number, offset: bigint): Promise<KafkaRecord | undefined> {
    return (await this.readFrom(topic, partition, offset))?.records.find((r) => r.offset === offset);
  }

  /**
   * What one fetch returns of a topic's partition (assigned or not) from
   * `offset`, without waiting: up to 1 MiB of records, and the offset after
   * them; undefined when `offset` is out of range (compacted or deleted). On
   * ends()'s connection, for point reads beside the running fetch.
   */
  readFrom(topic: string, partition: number, offset: bigint): Promise<{ records: readonly KafkaRecord[]; nextOffset: bigint } | undefined> {
    const client = this.#pointClient();
    // A leader that moved: ask again on fresh metadata.
    return retry(retryPolicies.reader, () => this.#readFromOnce(client, topic, partition, offset), { onRetry: () => client.clearMetadata() });
  }

  async #readFromOnce(client: RawFetchConsumer, topic: string, partition: number, offset: bigint): Promise<{ records: readonly KafkaRecord[]; nextOffset: bigint } | undefined> {
    try {
      const metadata = await client.metadata({ topics: [topic] });
      const described = metadata.topics.get(topic);
      const leader = described?.partitions[partition]?.leader ?? -1;
      if (described === undefined || leader < 0) throw new BrokerUnavailableError(`${topic}[${partition}] has no leader`);
      const response = await client.fetchRaw({
        node: leader,
        topics: [{ topicId: described.id, partitions: [{ partition, fetchOffset: offset, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1024 * 1024 }] }],
        minBytes: 1,
        maxBytes: 1024 * 1024,
        maxWaitTime: 0,
        isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
      });
      const answer = response.responses[0]?.partitions.find((p) => p.partitionIndex === partition);
      // Only a clean answer may say "no such record": a caller treats that as gone for good.
      if (answer === undefined || answer.errorCode !== 0) throw new BrokerUnavailableError(`reading ${topic}[${partition}] failed (error code ${answer?.errorCode ?? 'none'})`);
      const { records, nextOffset } = decodePartition(topic, partition, offset, answer, false);
      return { records, nextOffset };
    } catch (error) {
      const classified = toSluiceError(error, { ...this.#context, operation: `read ${topic}[${partition}] at ${offset}` });
      if ((classified as SluiceError & { kafkaCode?: string }).kafkaCode === OFFSET_OUT_OF_RANGE) return undefined;
      throw classified;
    }
  }

  /** The next offset of every assigned partition. */
  positions(): TopicPartitionOffset[] {
    return [...this.#positions.values()].map((p) => ({ ...p }));
  }

  /**
   * Reads until stop() or until `until` says every partition is done; each
   * partition's batches reach `handler` in order, one at a time per broker.
   */
  run(handler: BatchHandler, until?: (positions: TopicPartitionOffset[]) => boolean): Promise<void> {
    return this.#run((topic, partition, fetched, scanned) => handler(toPartitionBatch(topic, partition, fetched, scanned)), until);
  }

  /** run(), handing over each batch read in place (FetchedBatch) instead of as KafkaRecords. */
  runFetched(handler: FetchedBatchHandler, until?: (positions: TopicPartitionOffset[]) => boolean): Promise<void> {
    return this.#run(
      (topic, partition, fetched, scanned) =>
        handler({
          topic,
          partition,
          nextOffset: scanned.nextOffset,
          highWatermark: fetched.highWatermark,
          lastStableOffset: fetched.lastStableOffset,
          leaderEpoch: scanned.leaderEpoch,
          visit: (visitor, limit) => scanned.visit(visitor, limit),
        }),
      until,
    );
  }

  #run(deliver: Deliver, until?: (positions: TopicPartitionOffset[]) => boolean): Promise<void> {
    this.#running ??= this.#loop(deliver, until).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #loop(deliver: Deliver, until?: (positions: TopicPartitionOffset[]) => boolean): Promise<void> {
    while (!this.#stopping && !until?.(this.positions())) {
      try {
        // Failed rounds are retried by the reader policy; its count starts again after each round that succeeds.
        await retry(retryPolicies.reader, () => this.#round(deliver), {
          signal: this.#abort.signal,
          onRetry: (error, attempt) => this.#log.debug({ err: error, attempt }, 'fetch failed; retrying'),
        });
      } catch (error) {
        if (this.#stopping) return;
        throw error;
      }
    }
  }

  /** One fetch from every broker leading an assigned partition; a failure is classified (toSluiceError) for the retry. */
  async #round(deliver: Deliver): Promise<void> {
    try {
      const metadata = await this.#metadata();
      const byLeader = this.#byLeader(metadata);
      if (byLeader.size === 0) {
        // Nothing assigned, or no partition has a leader right now (a broker restarting).
        await sleep(this.#settings.maxWaitMs, undefined, { signal: this.#abort.signal }).catch(() => undefined);
        this.#client.clearMetadata();
        return;
      }
      // One fetch per broker at a time, the brokers in parallel; the round ends when all have answered and been handled.
      await Promise.all([...byLeader].map(([node, positions]) => this.#fetchFrom(node, positions, metadata, deliver)));
    } catch (error) {
      this.#prefetched.clear();
      throw toSluiceError(error, { ...this.#context, operation: 'fetch' });
    }
  }

  async #metadata(): Promise<ClusterMetadata> {
    return this.#client.metadata({ topics: [...new Set([...this.#positions.values()].map((p) => p.topic))] });
  }

  #byLeader(metadata: ClusterMetadata): Map<number, TopicPartitionOffset[]> {
    const out = new Map<number, TopicPartitionOffset[]>();
    for (const p of this.#positions.values()) {
      const leader = metadata.topics.get(p.topic)?.partitions[p.partition]?.leader ?? -1;
      if (leader < 0) continue;
      out.set(leader, [...(out.get(leader) ?? []), p]);
    }
    return out;
  }

  /** The Fetch for `positions` on `node`, and its identity (a prefetched response serves only the same request). */
  #fetchRequest(node: number, positions: readonly TopicPartitionOffset[], metadata: ClusterMetadata): FetchRequest {
    const byTopic = new Map<string, TopicPartitionOffset[]>();
    for (const p of positions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    const topicNames = new Map<string, string>();
    let key = `${node}`;
    const topics = [...byTopic].map(([topic, list]) => {
      const topicId = metadata.topics.get(topic)!.id;
      topicNames.set(topicId, topic);
      return {
        topicId,
        partitions: list.map((p) => {
          key += `\u0000${topic}\u0000${p.partition}\u0000${p.offset}`;
          return { partition: p.partition, fetchOffset: p.offset, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: this.#settings.maxBytesPerPartition };
        }),
      };
    });
    return { node, key, topics, topicNames };
  }

  #send(request: FetchRequest): Promise<FetchResponse> {
    return this.#client.fetchRaw({
      node: request.node,
      topics: request.topics,
      minBytes: this.#settings.minBytes,
      maxBytes: this.#settings.maxBytes,
      maxWaitTime: this.#settings.maxWaitMs,
      isolationLevel: this.#settings.readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
    });
  }

  async #fetchFrom(node: number, positions: TopicPartitionOffset[], metadata: ClusterMetadata, deliver: Deliver): Promise<void> {
    const request = this.#fetchRequest(node, positions, metadata);
    const prefetched = this.#prefetched.get(node);
    this.#prefetched.delete(node);
    let response: FetchResponse;
    try {
      response = await (prefetched?.key === request.key ? prefetched.response : this.#send(request));
    } catch (error) {
      const classified = toSluiceError(error, this.#context);
      if ((classified as SluiceError & { kafkaCode?: string }).kafkaCode === OFFSET_OUT_OF_RANGE) {
        await this.#resetOutOfRange(positions);
        return;
      }
      throw error;
    }
    const fetched: Fetched[] = [];
    for (const t of response.responses) {
      const topic = request.topicNames.get(t.topicId);
      if (topic === undefined) continue;
      for (const p of t.partitions) {
        const position = this.#positions.get(`${topic}\u0000${p.partitionIndex}`);
        if (position === undefined || p.errorCode !== 0) continue;
        const scanned = fetchedRecords(p, position.offset, this.#settings.readCommitted);
        // A read_committed fetch stops at an open transaction's records; the offset moves on only past what was
        // returned (any record returned moves it).
        if (scanned.nextOffset === position.offset) continue;
        fetched.push({ position, topic, partition: p, scanned });
      }
    }
    if (fetched.length > 0 && !this.#stopping) this.#prefetch(node, positions, fetched, metadata);
    for (const { position, topic, partition, scanned } of fetched) {
      await deliver(topic, partition.partitionIndex, partition, scanned);
      position.offset = scanned.nextOffset;
    }
  }

  /**
   * Asks `node` for what follows `fetched` before it is handled: the broker reads and sends the next records while
   * these are decoded and written, instead of after. At most one such fetch per broker, so a reader holds at most two
   * fetches' bytes; a seek or a moved leader makes it a different request, and its answer is dropped.
   */
  #prefetch(node: number, positions: readonly TopicPartitionOffset[], fetched: readonly Fetched[], metadata: ClusterMetadata): void {
    const next = positions.map((p) => {
      const done = fetched.find((f) => f.position === p);
      return done ? { ...p, offset: done.scanned.nextOffset } : p;
    });
    const request = this.#fetchRequest(node, next, metadata);
    const response = this.#send(request);
    // A prefetch nobody asks for (the reader stopped, or seeked) must not surface as an unhandled rejection.
    response.catch(() => undefined);
    this.#prefetched.set(node, { key: request.key, response });
  }

  /** A position before the log start (retention removed it) restarts at the earliest offset still there. */
  async #resetOutOfRange(positions: TopicPartitionOffset[]): Promise<void> {
    for (const topic of new Set(positions.map((p) => p.topic))) {
      const earliest = await this.#admin.listOffsets(topic, 'earliest');
      const latest = await this.#admin.listOffsets(topic, 'latest');
      for (const p of positions.filter((x) => x.topic === topic)) {
        const low = earliest.get(p.partition) ?? 0n;
        const high = latest.get(p.partition) ?? low;
        if (p.offset < low || p.offset > high) {
          this.#log.warn({ topic, partition: p.partition, from: p.offset.toString(), to: low.toString() }, 'offset out of range; reading from the earliest offset still on the log');
          p.offset = low;
        }
      }
    }
  }

  /**
   * Every record of `topics` from `from` (default: each partition's start) up to
   * the end each partition had when the call began. read_committed ends stop at
   * the last stable offset.
   */
  async readToEnd(topics: readonly string[], from?: ReadonlyMap<string, bigint>): Promise<KafkaRecord[]> {
    const ranges: PartitionRange[] = [];
    for (const topic of topics) {
      const [earliest, latest] = await Promise.all([this.#admin.listOffsets(topic, 'earliest'), this.#admin.listOffsets(topic, 'latest', { readCommitted: this.#settings.readCommitted })]);
      for (const [partition, end] of latest) ranges.push({ topic, partition, start: from?.get(`${topic}:${partition}`) ?? earliest.get(partition) ?? 0n, end });
    }
    return this.#readRanges(ranges, () => true);
  }

  /**
   * The records of `topic` whose offsets lie between the first with a
   * timestamp at or after `fromMs` and the first at or after `toMs` (or the
   * end), that `keep` accepts: a bounded look back without reading the
   * partitions from their start.
   */
  async readBetween(topic: string, fromMs: number, toMs: number, keep: (record: KafkaRecord) => boolean): Promise<KafkaRecord[]> {
    const readCommitted = this.#settings.readCommitted;
    // A partition with no record at or after a time answers its end.
    const [starts, ends] = await Promise.all([
      this.#admin.listOffsets(topic, { timestamp: BigInt(Math.max(0, fromMs)) }, { readCommitted }),
      this.#admin.listOffsets(topic, { timestamp: BigInt(Math.max(0, toMs)) }, { readCommitted }),
    ]);
    const ranges = [...starts].map(([partition, start]) => ({ topic, partition, start, end: ends.get(partition) ?? start }));
    return this.#readRanges(ranges, keep);
  }

  async #readRanges(ranges: readonly PartitionRange[], keep: (record: KafkaRecord) => boolean): Promise<KafkaRecord[]> {
    const pending = ranges.filter((r) => r.start < r.end);
    if (pending.length === 0) return [];
    this.assign(pending.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.start })));
    const end = new Map(pending.map((r) => [`${r.topic}\u0000${r.partition}`, r.end]));
    const out: KafkaRecord[] = [];
    await this.run(
      (batch) => {
        const stop = end.get(`${batch.topic}\u0000${batch.partition}`)!;
        for (const r of batch.records) if (r.offset < stop && keep(r)) out.push(r);
      },
      (positions) => positions.every((p) => p.offset >= (end.get(`${p.topic}\u0000${p.partition}`) ?? 0n)),
    );
    return out;
  }

  /** Ends run() after the batch being handled. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all([this.#client.close(true), this.#offsets?.close(true), this.#adminClient?.close()]);
  }
}
