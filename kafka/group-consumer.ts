import { Admin, ConnectionPool, Consumer, FetchIsolationLevels, FindCoordinatorKeyTypes, ListOffsetTimestamps, MessagesStreamModes, type BaseOptions, type MessagesStream } from '@platformatic/kafka';
import diagnostics from 'node:diagnostics_channel';
import type { Logger } from '../core/logger.ts';
import { retry, retryPolicies } from '../core/retry.ts';
import { isRetryable } from '../core/errors.ts';
import { routeClientEvents } from './client-options.ts';
import { toSluiceError } from './errors.ts';
import { RawFetchConsumer } from './raw-fetch.ts';
import { decodePartition, type FetchedPartition } from './record-codec.ts';
import type { PartitionBatch, TopicPartition, TopicPartitionOffset } from './types.ts';

/**
 * A consumer-group member that hands over per-partition batches of raw records.
 *
 * Group membership (join, heartbeats, rebalances, both group protocols) is
 * @platformatic/kafka's; fetching is this class's own loop over the client's
 * Fetch call, because the library's message stream builds a message object,
 * a header map, a commit closure and a diagnostic context per record and reads
 * at 610-780k records/s where kafkajs's eachBatch read 1.03-1.07M/s. Here a
 * fetched record batch becomes a `PartitionBatch` of `KafkaRecord`s (bytes as
 * received, bigint offsets) with one allocation per record.
 *
 * Owning the fetch positions also makes seeking exact: a fetch answered after
 * a rebalance or a rewind is recognised by the partition's epoch and dropped,
 * so a stale response can never move a position.
 *
 * Backpressure: a partition is fetched again only once the batches handed over
 * for it are done and fewer than `maxBufferedRecords` of its records are
 * waiting, so memory holds at most about one fetch per assigned partition.
 */

export type GroupProtocol = 'classic' | 'consumer';

export interface GroupConsumerOptions {
  /** The client's connection options (brokers, TLS, SASL, retries), from kafka/client-options.ts. */
  client: BaseOptions;
  groupId: string;
  topics: string[];
  protocol: GroupProtocol;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs?: number;
  /** Longest a fetch waits on the broker for new records; also bounds how long close() waits for an idle fetch. */
  maxWaitMs?: number;
  /** Bytes a fetch may return per partition. */
  maxBytesPerPartition?: number;
  /** Only records of committed transactions (exactly-once inputs); read_committed unless told otherwise. */
  readCommitted?: boolean;
  /** Records of one partition waiting to be handed over before its fetching pauses. */
  maxBufferedRecords?: number;
  /** Partitions handed over at once (each in order). */
  concurrency: number;
  /** Where a partition without a committed offset starts. */
  fallback?: 'earliest' | 'latest';
  /**
   * Read committed offsets with require_stable (KIP-447): while a transaction
   * that commits offsets of a partition is open, its offset is not final, and
   * the broker makes the reader wait. Exactly-once workers need it; a partition
   * taken over from a member whose last transaction was still committing would
   * otherwise start from the offset before it and process records twice.
   */
  stableOffsets?: boolean;
  logger: Logger;
}

/**
 * The group membership a batch was fetched under; a transactional offset commit carries it (KIP-447), so a zombie is fenced.
 * Where the commit is sent is not part of it: the group coordinator can move (a broker lost) while the membership stays
 * valid, so a commit asks offsetCoordinator() at the time it is sent.
 */
export interface GroupGeneration {
  readonly groupId: string;
  readonly memberId: string;
  readonly generationId: number;
}

/** A PartitionBatch (never empty) with the group membership it was fetched under. */
export interface GroupBatch extends PartitionBatch {
  readonly generation: GroupGeneration;
  /**
   * Which holding of the partition by this member the batch belongs to: a new
   * one starts on every assignment of it (and, with the classic protocol, on
   * every new generation). See commitGeneration().
   */
  readonly tenure: number;
}

export interface GroupListener {
  /** Handles one batch; the partition's next batch waits for it. A rejection rewinds the partition to its committed offset. */
  batch(batch: GroupBatch): Promise<void>;
  /** Partitions now owned by this member (after the group's assignment, before their first batch). */
  assigned?(partitions: TopicPartition[], generation: GroupGeneration): void;
  /** Partitions no longer owned; what was handed over for them must not be committed. */
  revoked?(partitions: TopicPartition[]): void;
}

/** Offset to commit: `offset` is the next record to read (last processed + 1). */
export interface CommitOffset extends TopicPartitionOffset {
  leaderEpoch?: number;
}

/** Where the kafka/ seam reaches the library consumer (transactions add it to a transaction); not exported from the seam. */
export const kNativeConsumer: unique symbol = Symbol('sluice.kafka.nativeConsumer');

/** The API key of ConsumerGroupHeartbeat (KIP-848). */
const CONSUMER_GROUP_HEARTBEAT = 68;

/** The client's tracing channel of API responses (diagnostics_channel). */
const API_RESPONSES = 'tracing:plt:kafka:connections:api:asyncStart';

/** The part of a Fetch response this class reads. */
interface FetchResponse {
  responses: { topicId: string; partitions: (FetchedPartition & { partitionIndex: number })[] }[];
}

/** A batch whose handling failed is read again after this pause, so a dependency that is down is not hammered. */
const REWIND_DELAY_MS = 1000;

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** Bumped on every seek, rebalance and rewind: fetch responses requested under an older epoch are dropped. */
  epoch: number;
  readonly tenure: number;
  /** Next offset to fetch; undefined until the start offset is known. */
  position: bigint | undefined;
  /** After a rewind with a delay: no offset lookup before this time. */
  notBefore: number;
  leaderEpoch: number;
  /** Batches fetched and not yet handed over. */
  queue: GroupBatch[];
  queuedRecords: number;
  /** A batch of this partition is being handled. */
  busy: boolean;
  /** A fetch for this partition is in flight. */
  fetching: boolean;
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True when a fetch failed because the position is outside the log (retention deleted it, or the topic was recreated). */
function isOffsetOutOfRange(error: unknown): boolean {
  for (let e: unknown = error; e;) {
    const { apiId, errors, cause } = e as { apiId?: string; errors?: unknown[]; cause?: unknown };
    if (apiId === 'OFFSET_OUT_OF_RANGE') return true;
    if (Array.isArray(errors) && errors.some(isOffsetOutOfRange)) return true;
    e = cause;
  }
  return false;
}

export class GroupConsumer {
  readonly groupId: string;
  readonly #options: GroupConsumerOptions;
  readonly #log: Logger;
  readonly #consumer: RawFetchConsumer;
  readonly #admin: Admin;
  /** Fetches go on their own connections, so a long poll never delays a heartbeat or an offset commit. */
  readonly #fetchPool: ConnectionPool;
  readonly #partitions = new Map<string, PartitionState>();
  #listener: GroupListener | undefined;
  /** Joins the group and follows its rebalances; never read (see start()). */
  #membership: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #assignmentSignature = '';
  #generation: GroupGeneration | undefined;
  #tenures = 0;
  /** The member epoch of the `consumer` protocol (KIP-848), which its offset commits carry in place of a generation. */
  #memberEpoch = -1;
  #unsubscribe: (() => void) | undefined;
  #active = 0;
  readonly #ready: string[] = [];
  readonly #inflightNodes = new Set<number>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #resolving: Promise<void> | undefined;
  /** Fetches failed in a row, by broker (the retry waits longer, and warns only of the first); deleted when one succeeds. */
  readonly #fetchFailures = new Map<number, number>();
  /** A fetch failed since the last plan: the next one reads the cluster's metadata instead of the cached copy. */
  #leadersStale = false;
  readonly #coordinator: CoordinatorRoute;

  constructor(options: GroupConsumerOptions) {
    this.groupId = options.groupId;
    this.#options = options;
    this.#log = options.logger;
    this.#consumer = new RawFetchConsumer({
      ...options.client,
      groupId: options.groupId,
      groupProtocol: options.protocol,
      autocommit: false,
      isolationLevel: options.readCommitted === false ? FetchIsolationLevels.READ_UNCOMMITTED : FetchIsolationLevels.READ_COMMITTED,
      // With the consumer protocol the broker sets session timeout and heartbeat interval
      // (group.consumer.*); the client still checks rebalanceTimeout >= sessionTimeout.
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? options.sessionTimeoutMs * 2,
    });
    // One attempt per fetch: a failed one is planned again from the leaders (raw-fetch.ts singleAttemptFetch).
    this.#consumer.singleAttemptFetch = true;
    routeClientEvents(this.#consumer, options.logger);
    // Reading a stable offset waits (UNSTABLE_OFFSET_COMMIT is retried) for the transaction holding it.
    this.#admin = new Admin({ ...options.client, clientId: `${options.client.clientId}-offsets`, retries: 50, retryDelay: 100 });
    this.#fetchPool = new ConnectionPool(`${options.client.clientId}-fetch`, options.client);
    this.#coordinator = new CoordinatorRoute(async () => {
      const [found] = await this.#admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [this.groupId] });
      if (found === undefined || found.nodeId < 0) throw new Error(`no coordinator for group ${this.groupId}`);
      this.#log.info({ library: this.#consumer.coordinatorId, coordinator: found.nodeId }, 'group coordinator looked up after a failed commit');
      return found.nodeId;
    });
  }

  /** Whether the cluster speaks the `consumer` group protocol (KIP-848: ConsumerGroupHeartbeat, Kafka >= 4.0). */
  static async supportsConsumerProtocol(client: BaseOptions): Promise<boolean> {
    const admin = new Admin({ ...client, clientId: `${client.clientId}-probe` });
    try {
      const apis = await admin.listApis();
      // Kafka 3.x lists version 0 of it as a preview (off unless configured); 4.0 brings version 1.
      return apis.some((api) => api.apiKey === CONSUMER_GROUP_HEARTBEAT && api.maxVersion >= 1);
    } finally {
      await admin.close();
    }
  }

  get [kNativeConsumer](): Consumer {
    return this.#consumer;
  }

  /** The membership batches are fetched under now; undefined before the first assignment. */
  get generation(): GroupGeneration | undefined {
    return this.#generation;
  }

  /**
   * The membership a chunk of `partition` fetched under `tenure` commits its
   * offset with, or undefined when the member no longer holds the partition
   * since then (its work is someone else's now, or will be read again).
   *
   * Classic protocol: the generation the batch was fetched under (a new
   * generation starts a new tenure). Consumer protocol: the member epoch now,
   * as the broker checks a transactional offset commit against the member's
   * current epoch, and holding the partition throughout is what makes the
   * work valid.
   */
  commitGeneration(partition: TopicPartition, tenure: number): GroupGeneration | undefined {
    this.#reconcile();
    const state = this.#partitions.get(partitionKey(partition.topic, partition.partition));
    return state !== undefined && state.tenure === tenure ? this.#generation : undefined;
  }

  /** The node a transactional offset commit of this group goes to now (see CoordinatorRoute). */
  offsetCoordinator(): Promise<number> {
    return this.#coordinator.node(this.#consumer.coordinatorId ?? null);
  }

  /** A commit could not reach the group coordinator (or was told it is not one): the next one looks it up. */
  coordinatorFailed(): void {
    this.#coordinator.failed();
  }

  /** Partitions currently assigned. */
  assignment(): TopicPartition[] {
    return [...this.#partitions.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Joins the group and starts handing batches to `listener`.
   *
   * The library joins a group (with either protocol) when a message stream is
   * created; this stream is the membership only and is never read: it stays
   * paused (its resume() is a no-op), so it fetches nothing.
   */
  async start(listener: GroupListener): Promise<void> {
    this.#listener = listener;
    for (const event of ['consumer:group:join', 'consumer:group:rebalance', 'consumer:heartbeat:end'] as const) {
      this.#consumer.on(event, () => this.#tick());
    }
    this.#consumer.on('consumer:heartbeat:error', ({ error }) => this.#log.debug({ err: error }, 'consumer group heartbeat failed'));
    if (this.#options.protocol === 'consumer') this.#followMemberEpoch();
    await this.#join();
    this.#tick();
  }

  /**
   * The client keeps the member epoch to itself (and fills a transactional
   * offset commit's generation with 0, which the broker refuses for a consumer
   * protocol member); its diagnostics channel shows every ConsumerGroupHeartbeat
   * response, so the epoch is read there.
   */
  #followMemberEpoch(): void {
    const onResponse = (message: unknown) => {
      const context = message as { apiKey?: number; result?: { errorCode?: number; memberId?: string | null; memberEpoch?: number } };
      if (context.apiKey !== CONSUMER_GROUP_HEARTBEAT) return;
      const result = context.result;
      if (!result || result.errorCode !== 0 || result.memberId !== this.#consumer.memberId || result.memberEpoch === undefined || result.memberEpoch < 0) return;
      if (result.memberEpoch === this.#memberEpoch) return;
      this.#memberEpoch = result.memberEpoch;
      queueMicrotask(() => this.#tick());
    };
    diagnostics.subscribe(API_RESPONSES, onResponse);
    this.#unsubscribe = () => diagnostics.unsubscribe(API_RESPONSES, onResponse);
  }

  async #join(): Promise<void> {
    const membership = await this.#consumer.consume({
      topics: this.#options.topics,
      autocommit: false,
      // The stream looks its positions up on every join although it never fetches: LATEST costs one ListOffsets.
      mode: MessagesStreamModes.LATEST,
      maxWaitTime: this.#options.maxWaitMs ?? 500,
    });
    membership.resume = () => membership;
    membership.on('error', (error: unknown) => this.#log.warn({ err: error }, 'consumer group membership stream failed; joining again'));
    // The stream ends on an error (e.g. a broker down during one of its lookups), and the client then
    // forgets its topics: create another one so the member stays subscribed.
    membership.once('close', () => {
      if (!this.#closed) void this.#rejoin();
    });
    this.#membership = membership;
  }

  async #rejoin(): Promise<void> {
    try {
      await retry(retryPolicies.membership, () => this.#join(), {
        retryable: () => !this.#closed,
        onRetry: (error, attempt) => this.#log.warn({ err: error, attempt }, 'joining the consumer group again failed; retrying'),
      });
      this.#tick();
    } catch (error) {
      // Closed meanwhile, or a programming error (never retried): the member stays out of the group, and says why.
      if (!this.#closed) this.#log.error({ err: error }, 'joining the consumer group again failed; this member no longer consumes');
    }
  }

  /** Commits offsets outside any transaction (at-least-once workers, bridges). */
  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.#consumer.commit({
      offsets: offsets.map(({ topic, partition, offset, leaderEpoch }) => ({ topic, partition, offset, leaderEpoch: leaderEpoch ?? -1 })),
    });
  }

  /**
   * Forgets what was fetched for `partitions` and reads them again from their
   * committed offsets, after `delayMs` (after a failed commit or a failure
   * handling a record: nothing past the committed offset counts).
   */
  rewind(partitions: readonly TopicPartition[], delayMs = 0): void {
    const notBefore = Date.now() + delayMs;
    for (const { topic, partition } of partitions) {
      const state = this.#partitions.get(partitionKey(topic, partition));
      if (!state) continue;
      state.epoch++;
      state.position = undefined;
      state.notBefore = notBefore;
      state.queue = [];
      state.queuedRecords = 0;
      state.fetching = false;
    }
    if (delayMs > 0) this.#retryLater(delayMs);
    this.#tick();
  }

  /** Partitions of `topic` in the cluster's metadata (0 when the topic is unknown). */
  async partitionCount(topic: string): Promise<number> {
    const metadata = await this.#consumer.metadata({ topics: [topic], forceUpdate: true });
    return metadata.topics.get(topic)?.partitionsCount ?? 0;
  }

  /** Stops fetching and handing over batches, and waits for those being handled. The membership stays (commits still carry a valid generation). */
  async stop(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const state of this.#partitions.values()) {
      state.queue = [];
      state.queuedRecords = 0;
    }
    while (this.#active > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Stops (see stop()) and leaves the group. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.stop();
    this.#unsubscribe?.();
    const membership = this.#membership;
    // close() drains the stream through resume(): give it back the real one.
    if (membership) delete (membership as { resume?: unknown }).resume;
    await membership?.close().catch((error: unknown) => this.#log.debug({ err: error }, 'closing the membership stream failed'));
    const results = await Promise.allSettled([this.#consumer.close(true), this.#admin.close(), new Promise<void>((resolve) => this.#fetchPool.close(() => resolve()))]);
    for (const result of results) if (result.status === 'rejected') this.#log.warn({ err: result.reason }, 'closing the group consumer failed');
  }

  /** Follows the assignment, then fetches what can be fetched and hands over what is ready. */
  #tick(): void {
    if (this.#closed) return;
    this.#reconcile();
    void this.#resolvePositions();
    this.#fetch();
    this.#dispatch();
  }

  /** Compares the library's assignment with ours: revokes what left, adds what came. */
  #reconcile(): void {
    const consumer = this.#consumer;
    const assignments = consumer.memberId && consumer.assignments ? consumer.assignments : [];
    const wanted = new Set<string>();
    for (const { topic, partitions } of assignments) for (const partition of partitions) wanted.add(partitionKey(topic, partition));
    const generationId = this.#options.protocol === 'consumer' ? this.#memberEpoch : consumer.generationId;
    const signature = `${consumer.memberId}|${generationId}|${[...wanted].sort().join(',')}`;
    if (signature === this.#assignmentSignature) return;
    this.#assignmentSignature = signature;

    const previous = this.#generation;
    const generation: GroupGeneration = { groupId: this.groupId, memberId: consumer.memberId ?? '', generationId };
    // A new generation (classic protocol) fences every commit of the previous one: whatever
    // was handed over under it is revoked, kept partitions included, and read again. With the
    // consumer protocol the member epoch moves on every assignment change of the member, while
    // the partitions it keeps stay its own: only a new member id starts afresh.
    const newGeneration = previous === undefined || previous.memberId !== generation.memberId || (this.#options.protocol === 'classic' && previous.generationId !== generation.generationId);
    this.#generation = generation;

    const revoked: TopicPartition[] = [];
    for (const [key, state] of this.#partitions) {
      if (!newGeneration && wanted.has(key)) continue;
      revoked.push({ topic: state.topic, partition: state.partition });
      this.#partitions.delete(key);
      state.epoch++;
    }
    const added: TopicPartition[] = [];
    for (const { topic, partitions } of assignments) {
      for (const partition of partitions) {
        const key = partitionKey(topic, partition);
        if (this.#partitions.has(key)) continue;
        this.#partitions.set(key, {
          topic,
          partition,
          key,
          tenure: ++this.#tenures,
          epoch: 0,
          position: undefined,
          notBefore: 0,
          leaderEpoch: -1,
          queue: [],
          queuedRecords: 0,
          busy: false,
          fetching: false,
        });
        added.push({ topic, partition });
      }
    }
    if (revoked.length > 0) {
      this.#log.info({ partitions: revoked.length, generationId: previous?.generationId }, 'partitions revoked');
      this.#listener?.revoked?.(revoked);
    }
    if (newGeneration) {
      const partitions = [...this.#partitions.values()].map((p) => `${p.topic}/${p.partition}`);
      this.#log.info({ partitions, generationId: generation.generationId, memberId: generation.memberId, protocol: this.#options.protocol }, 'joined the consumer group; partitions assigned');
    }
    if (added.length > 0) this.#listener?.assigned?.(added, generation);
  }

  /**
   * Reads the start offset of every partition without one: the committed offset, else the fallback end of the log.
   * A failure the classification calls transient (a coordinator moving, a broker down) is retried by the membership
   * policy for as long as the consumer is open; any other (an authorisation refusal, a bug) parks the partitions until
   * they are assigned again, and says so, rather than asking the same question in a loop.
   */
  async #resolvePositions(): Promise<void> {
    if (this.#resolving) return;
    const now = Date.now();
    const pending = [...this.#partitions.values()].filter((s) => s.position === undefined && !s.busy && s.queue.length === 0 && s.notBefore <= now);
    if (pending.length === 0) return;
    const epochs = new Map(pending.map((s) => [s.key, s.epoch]));
    const current = (state: PartitionState) => this.#partitions.get(state.key) === state && state.epoch === epochs.get(state.key);
    this.#resolving = retry(retryPolicies.membership, () => this.#startOffsets(pending), {
      retryable: (error) => !this.#closed && pending.some(current) && isRetryable(toSluiceError(error)),
      onRetry: (error, attempt, delayMs) => this.#log.warn({ err: error, attempt, retryInMs: delayMs }, 'reading the committed offsets failed; trying again'),
    })
      .then((offsets) => {
        for (const state of pending) if (current(state)) state.position = offsets.get(state.key);
      })
      .catch((error: unknown) => {
        if (this.#closed) return;
        const parked = pending.filter(current);
        for (const state of parked) state.notBefore = Number.POSITIVE_INFINITY;
        this.#log.error({ err: error, partitions: parked.map((s) => `${s.topic}/${s.partition}`) }, 'reading the committed offsets failed for good; these partitions wait for their next assignment');
      })
      .finally(() => {
        this.#resolving = undefined;
        this.#tick();
      });
  }

  async #startOffsets(states: PartitionState[]): Promise<Map<string, bigint>> {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of states) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    const groups = await this.#admin.listConsumerGroupOffsets({
      groups: [{ groupId: this.groupId, topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
      requireStable: this.#options.stableOffsets ?? true,
    });
    const offsets = new Map<string, bigint>();
    for (const group of groups) {
      for (const topic of group.topics) {
        for (const p of topic.partitions) if (p.committedOffset >= 0n) offsets.set(partitionKey(topic.name, p.partitionIndex), p.committedOffset);
      }
    }
    const missing = states.filter((s) => !offsets.has(s.key));
    if (missing.length > 0) {
      const fallback = await this.#logEnds(missing, this.#options.fallback === 'latest' ? ListOffsetTimestamps.LATEST : ListOffsetTimestamps.EARLIEST);
      for (const [key, offset] of fallback) offsets.set(key, offset);
    }
    return offsets;
  }

  async #logEnds(states: PartitionState[], timestamp: bigint): Promise<Map<string, bigint>> {
    const partitions: Record<string, number[]> = {};
    for (const { topic, partition } of states) (partitions[topic] ??= []).push(partition);
    const offsets = await this.#consumer.listOffsets({ topics: Object.keys(partitions), partitions, timestamp });
    const result = new Map<string, bigint>();
    for (const { topic, partition, key } of states) {
      const offset = offsets.get(topic)?.[partition];
      if (offset !== undefined) result.set(key, offset);
    }
    return result;
  }

  /** Starts one fetch per broker for its partitions that have a position, no fetch in flight and room in their queue. */
  #fetch(): void {
    const maxBuffered = this.#options.maxBufferedRecords ?? 10_000;
    const candidates = [...this.#partitions.values()].filter((s) => s.position !== undefined && !s.fetching && s.queuedRecords < maxBuffered && s.queue.length < 2);
    if (candidates.length === 0) return;
    // After a failed fetch the leaders may have moved: plan once from the cluster's metadata, not the cached copy (each
    // failure asks once; fetches from the brokers that answer do not ask again while another is down).
    const forceUpdate = this.#leadersStale;
    this.#leadersStale = false;
    this.#consumer.metadata({ topics: this.#options.topics, forceUpdate }, (error, metadata) => {
      if (this.#closed) return;
      if (error || !metadata) {
        // The refresh it was asked for is still owed.
        this.#leadersStale ||= forceUpdate;
        this.#log.warn({ err: error }, 'reading the topic metadata failed; fetching again shortly');
        this.#retryLater();
        return;
      }
      const byNode = new Map<number, PartitionState[]>();
      for (const state of candidates) {
        if (state.fetching || state.position === undefined || this.#partitions.get(state.key) !== state) continue;
        const leader = metadata.topics.get(state.topic)?.partitions[state.partition]?.leader;
        if (leader === undefined || leader < 0 || this.#inflightNodes.has(leader)) continue;
        const list = byNode.get(leader) ?? [];
        list.push(state);
        byNode.set(leader, list);
      }
      for (const [node, states] of byNode) this.#fetchFrom(node, states, metadata.topics);
    });
  }

  #fetchFrom(node: number, states: PartitionState[], topics: Map<string, { id: string }>): void {
    this.#inflightNodes.add(node);
    const requested = states.map((s) => ({ state: s, epoch: s.epoch, offset: s.position! }));
    const byTopic = new Map<string, { topicId: string; partitions: { partition: number; fetchOffset: bigint; partitionMaxBytes: number; currentLeaderEpoch: number; lastFetchedEpoch: number }[] }>();
    for (const { state, offset } of requested) {
      state.fetching = true;
      const topicId = topics.get(state.topic)!.id;
      const entry = byTopic.get(topicId) ?? { topicId, partitions: [] };
      entry.partitions.push({ partition: state.partition, fetchOffset: offset, partitionMaxBytes: this.#options.maxBytesPerPartition ?? 1_048_576, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
      byTopic.set(topicId, entry);
    }
    const topicNames = new Map([...topics].map(([name, t]) => [t.id, name]));
    this.#consumer.fetchRaw(
      {
        node,
        topics: [...byTopic.values()],
        maxWaitTime: this.#options.maxWaitMs ?? 500,
        minBytes: 1,
        maxBytes: 50 * 1024 * 1024,
        connectionPool: this.#fetchPool,
      },
      (error, response: FetchResponse | undefined) => {
        this.#inflightNodes.delete(node);
        for (const { state, epoch } of requested) if (state.epoch === epoch) state.fetching = false;
        if (this.#closed) return;
        // A rebalance that completed during the fetch makes its records stale: follow it first.
        this.#reconcile();
        if (error) {
          if (isOffsetOutOfRange(error)) {
            void this.#resetOutOfRange(requested);
          } else {
            // Each fetch is one attempt: the first failure in a row is worth a warning, the retries of an outage are not.
            const failures = (this.#fetchFailures.get(node) ?? 0) + 1;
            this.#fetchFailures.set(node, failures);
            this.#leadersStale = true;
            const log = failures === 1 ? this.#log.warn.bind(this.#log) : this.#log.debug.bind(this.#log);
            log({ err: error, node, failures }, 'fetching failed; fetching again shortly');
            // 250 ms, doubled per failure in a row up to 2 s (about the client's own retry delay).
            this.#retryLater(250 * 2 ** Math.min(failures - 1, 3));
          }
          return;
        }
        this.#fetchFailures.delete(node);
        if (response) this.#accept(response, topicNames, requested);
        this.#tick();
      },
    );
  }

  /** Turns a fetch response into batches, dropping what a seek, rewind or rebalance made stale. */
  #accept(response: FetchResponse, topicNames: Map<string, string>, requested: { state: PartitionState; epoch: number; offset: bigint }[]): void {
    const generation = this.#generation!;
    const byKey = new Map(requested.map((r) => [r.state.key, r]));
    for (const topicResponse of response.responses) {
      const topic = topicNames.get(topicResponse.topicId) ?? topicResponse.topicId;
      for (const p of topicResponse.partitions) {
        const key = partitionKey(topic, p.partitionIndex);
        const request = byKey.get(key);
        const state = request?.state;
        if (!request || !state || state.epoch !== request.epoch || this.#partitions.get(key) !== state || state.position !== request.offset) continue;
        if (!p.records) continue;
        const batch = decodePartition(topic, p.partitionIndex, request.offset, p, this.#options.readCommitted !== false);
        state.position = batch.nextOffset;
        if (batch.leaderEpoch >= 0) state.leaderEpoch = batch.leaderEpoch;
        if (batch.records.length === 0) continue;
        state.queue.push({ ...batch, leaderEpoch: state.leaderEpoch, generation, tenure: state.tenure });
        state.queuedRecords += batch.records.length;
        this.#ready.push(key);
      }
    }
  }

  async #resetOutOfRange(requested: { state: PartitionState; epoch: number }[]): Promise<void> {
    const states = requested.filter((r) => r.state.epoch === r.epoch).map((r) => r.state);
    this.#log.warn({ partitions: states.map((s) => `${s.topic}/${s.partition}`) }, 'fetch position out of range; starting again from the fallback end of the log');
    try {
      const offsets = await this.#logEnds(states, this.#options.fallback === 'latest' ? ListOffsetTimestamps.LATEST : ListOffsetTimestamps.EARLIEST);
      for (const state of states) if (this.#partitions.get(state.key) === state) state.position = offsets.get(state.key);
    } catch (error) {
      this.#log.warn({ err: error }, 'reading the log ends failed');
    }
    this.#retryLater();
  }

  #retryLater(delayMs = 250): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
    }, delayMs);
  }

  /** Hands ready batches over, at most `concurrency` partitions at once, each partition's batches one after the other. */
  #dispatch(): void {
    while (this.#active < this.#options.concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      const state = this.#partitions.get(key);
      if (!state || state.busy || state.queue.length === 0) continue;
      const batch = state.queue.shift()!;
      state.queuedRecords -= batch.records.length;
      state.busy = true;
      this.#active++;
      const epoch = state.epoch;
      this.#listener!.batch(batch).then(
        () => this.#done(state, epoch),
        (error: unknown) => {
          this.#log.warn(
            { err: error, topic: state.topic, partition: state.partition, firstOffset: String(batch.records[0]!.offset) },
            `handling a batch failed (${describe(error)}); reading the partition again from its committed offset`,
          );
          this.#done(state, epoch);
          if (state.epoch === epoch) this.rewind([state], REWIND_DELAY_MS);
        },
      );
    }
  }

  #done(state: PartitionState, _epoch: number): void {
    state.busy = false;
    this.#active--;
    if (state.queue.length > 0) this.#ready.push(state.key);
    this.#tick();
  }
}

/**
 * Where a group's transactional offset commits go. The library's consumer
 * knows its coordinator and its heartbeats keep that current, except in one
 * case: a coordinator that left the cluster's metadata (a SIGKILLed broker,
 * once fenced) is kept until that broker comes back (consumer.js #handleError
 * clears the metadata on a "broker not in the metadata" error and keeps the
 * coordinator). So after a failed commit the cluster is asked (FindCoordinator),
 * and its answer is used until the library's own coordinator changes, which
 * means the library learned something newer itself.
 */
export class CoordinatorRoute {
  readonly #lookup: () => Promise<number>;
  #found: { node: number; library: number | null } | undefined;
  #suspect = false;

  constructor(lookup: () => Promise<number>) {
    this.#lookup = lookup;
  }

  /** The coordinator to use, given the library's (null when it has none). */
  async node(library: number | null): Promise<number> {
    if (this.#suspect || (library === null && this.#found === undefined)) {
      this.#suspect = false;
      try {
        this.#found = { node: await this.#lookup(), library };
      } catch (error) {
        this.#suspect = true;
        throw error;
      }
    }
    const found = this.#found;
    if (found !== undefined && (library === null || library === found.library)) return found.node;
    this.#found = undefined;
    return library!;
  }

  /** The last commit could not reach the coordinator it was sent to, or was told it is not the coordinator. */
  failed(): void {
    this.#suspect = true;
  }
}
