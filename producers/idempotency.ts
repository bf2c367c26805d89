import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError, IdempotencyKeyInUseError, IdempotencyKeyReusedError, SluiceError } from '../core/errors.ts';
import { stringifyJson } from '../core/json.ts';
import type { Logger } from '../core/logger.ts';
import type { RecordAck } from './batching-producer.ts';
import { AtomicProducer, type KafkaAdmin, type Kafka, type OutgoingRecord, type PartitionBatch, type PartitionReader, type RecordMetadata } from '../kafka/index.ts';

/**
 * `Idempotency-Key` on the produce routes (IETF httpapi idempotency-key draft).
 *
 * State: the compacted topic SLUICE_IDEMPOTENCY_TOPIC, keyed by
 * route + principal + key, holding the request's fingerprint and the response
 * it got. Every replica follows the whole topic with a group-less reader into
 * a map, so a retry that reaches another replica, or this one after a restart,
 * finds the original response.
 *
 * Atomicity: a keyed request's events and its response record are written in
 * one Kafka transaction (AtomicProducer: the events' offsets come back from
 * the produce responses before the commit, so the response can be built and
 * written inside it). A replica killed before the commit leaves neither (the
 * events are never visible to read_committed readers, and the retry writes
 * them anew); killed after it, both, and the retry is answered from the topic.
 *
 * Freshness: before treating a key as new, a replica waits until its reader
 * has applied the topic up to its current last stable offset (one ListOffsets
 * shared by every request that arrives while the previous one is in flight).
 * The LSO only passes a transaction once the coordinator has written its
 * commit marker, which happens after EndTxn has already returned to the
 * producer; so the replica that wrote a response answers only once its own
 * read_committed reader has read it back. A retry sent after that answer,
 * whichever replica takes it, then always finds it. Two replicas given the
 * same new key at the same instant can both write (there is no lock across
 * replicas); see README.
 */

export interface StoredResponse {
  status: number;
  body: unknown;
}

interface Entry extends StoredResponse {
  fingerprint: string;
  /** Epoch ms of the first request. */
  at: number;
}

const KEY_TEXT = /^[\x21-\x7e]{1,255}$/;
/** Transactions in flight at once per replica (one per transactional producer). */
const WRITERS = 3;
/** Most events in one transaction. */
const MAX_TRANSACTION_RECORDS = 2000;

export class IdempotencyKeyError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_BAD_REQUEST', `Idempotency-Key: ${message}`, { statusCode: 400 });
  }
}

/** The header's value: an RFC 8941 string (`"abc"`, as the draft writes it) or the bare text; 1-255 visible ASCII characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new IdempotencyKeyError('given more than once');
  const trimmed = header.trim();
  const text = trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
  if (!KEY_TEXT.test(text)) throw new IdempotencyKeyError('expected 1-255 visible ASCII characters, without spaces');
  return text;
}

/** What makes two requests "the same" for a key: the route, the `partial` mode and the events (as parsed, so whitespace does not count). */
export function fingerprint(route: string, partial: boolean, batch: boolean, events: unknown[]): string {
  return createHash('sha256')
    .update(route)
    .update('\n')
    .update(partial ? 'partial' : 'atomic')
    .update('\n')
    .update(stringifyJson({ batch, events }))
    .digest('base64url');
}

/** route + principal + key: a key is the caller's own, per route. */
export function scopeOf(route: string, principal: string, key: string): string {
  return `${route}\n${principal}\n${key}`;
}

/** The replica's view of the idempotency topic, followed continuously. */
export class IdempotencyStore {
  readonly #topic: string;
  readonly #retentionMs: number;
  readonly #admin: KafkaAdmin;
  readonly #reader: PartitionReader;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  /** Partition → next offset applied to the map. */
  readonly #applied = new Map<number, bigint>();
  #waiters: { target: Map<number, bigint>; resolve: () => void }[] = [];
  /** Scope → callers waiting for the reader to read back the entry first written at `at`. */
  readonly #readBack = new Map<string, { at: number; resolve: () => void }[]>();
  #running: Promise<void> | undefined;
  #inflight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(kafka: Kafka, admin: KafkaAdmin, config: SluiceConfig, logger: Logger) {
    this.#topic = config.idempotencyTopic;
    this.#retentionMs = config.idempotencyRetentionMs;
    this.#admin = admin;
    this.#reader = kafka.partitionReader({ name: 'ingress-idempotency', maxWaitMs: 200 });
    this.#log = logger;
  }

  get topic(): string {
    return this.#topic;
  }

  #starting: Promise<void> | undefined;

  /** Starts following the topic (once; again after a failed start, e.g. Kafka was down) and returns once everything on it was read. */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((error: unknown) => {
      this.#starting = undefined;
      throw error;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    await this.#admin.createTopics([
      {
        name: this.#topic,
        partitions: 1,
        // Compaction keeps one response per key; deletion drops keys past the window.
        configs: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(this.#retentionMs) },
      },
    ]);
    const earliest = await this.#admin.listOffsets(this.#topic, 'earliest');
    for (const [partition, offset] of earliest) this.#applied.set(partition, offset);
    this.#reader.assign([...earliest].map(([partition, offset]) => ({ topic: this.#topic, partition, offset })));
    this.#running = this.#reader.run((batch) => this.#apply(batch));
    this.#running.catch((error: unknown) => this.#log.error({ err: error }, 'the idempotency topic reader stopped; keyed requests wait for it'));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(60_000, this.#retentionMs)).unref();
    await this.#barrier();
  }

  #apply(batch: PartitionBatch): void {
    for (const r of batch.records) {
      if (r.key === null) continue;
      const scope = r.key.toString('utf8');
      if (r.value === null) this.#entries.delete(scope);
      else {
        try {
          const entry = JSON.parse(r.value.toString('utf8')) as Entry;
          this.#entries.set(scope, entry);
          this.#settleReadBack(scope, entry.at);
        } catch (error) {
          this.#log.warn({ err: error, offset: r.offset.toString() }, 'skipping an unreadable idempotency record');
        }
      }
    }
    this.#applied.set(batch.partition, batch.nextOffset);
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.#reached(w.target)) return true;
      w.resolve();
      return false;
    });
  }

  #settleReadBack(scope: string, at: number): void {
    const waiting = this.#readBack.get(scope);
    if (waiting === undefined) return;
    const rest = waiting.filter((w) => {
      if (w.at !== at) return true;
      w.resolve();
      return false;
    });
    if (rest.length === 0) this.#readBack.delete(scope);
    else this.#readBack.set(scope, rest);
  }

  /** Drops the wait for an entry that will not come (its transaction failed). */
  releaseReadBack(scope: string, at: number): void {
    this.#settleReadBack(scope, at);
  }

  /** Resolves once the reader has read back, committed, the entry for `scope` first written at `at`. */
  readBack(scope: string, at: number): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.#readBack.get(scope) ?? [];
      waiting.push({ at, resolve });
      this.#readBack.set(scope, waiting);
    });
  }

  #reached(target: ReadonlyMap<number, bigint>): boolean {
    for (const [partition, offset] of target) if ((this.#applied.get(partition) ?? 0n) < offset) return false;
    return true;
  }

  #sweep(): void {
    const oldest = Date.now() - this.#retentionMs;
    for (const [scope, entry] of this.#entries) if (entry.at < oldest) this.#entries.delete(scope);
  }

  /**
   * Resolves once every record committed on the topic before the call was
   * applied. Concurrent callers share one ListOffsets; a caller that arrives
   * while one is in flight waits for the next (the one in flight may predate
   * the commit it must see).
   */
  async sync(): Promise<void> {
    await this.start();
    return this.#coalescedBarrier();
  }

  #coalescedBarrier(): Promise<void> {
    if (this.#inflight === undefined) {
      this.#inflight = this.#barrier().finally(() => {
        this.#inflight = undefined;
      });
      return this.#inflight;
    }
    this.#queued ??= this.#inflight
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#coalescedBarrier();
      });
    return this.#queued;
  }

  async #barrier(): Promise<void> {
    const ends = await this.#admin.listOffsets(this.#topic, 'latest', { readCommitted: true });
    if (this.#reached(ends)) return;
    await new Promise<void>((resolve) => this.#waiters.push({ target: ends, resolve }));
  }

  get(scope: string): Entry | undefined {
    const entry = this.#entries.get(scope);
    return entry && entry.at >= Date.now() - this.#retentionMs ? entry : undefined;
  }

  /** Known at once on this replica; the reader applies the same entry again later. */
  remember(scope: string, entry: Entry): void {
    this.#entries.set(scope, entry);
  }

  record(scope: string, entry: Entry): OutgoingRecord {
    return { topic: this.#topic, key: Buffer.from(scope, 'utf8'), value: Buffer.from(JSON.stringify(entry), 'utf8') };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#reader.close();
    await this.#running?.catch(() => undefined);
    for (const w of this.#waiters) w.resolve();
    for (const waiting of this.#readBack.values()) for (const w of waiting) w.resolve();
    this.#readBack.clear();
  }
}

interface Job {
  records: OutgoingRecord[];
  /** The records to write in the same transaction, once the events' offsets are known. */
  follow(metadata: RecordMetadata[]): OutgoingRecord[];
  resolve(metadata: RecordMetadata[]): void;
  reject(error: unknown): void;
}

/**
 * Keyed requests, batched into transactions: whatever queued while the
 * producers were busy goes out in one transaction, up to WRITERS transactions
 * in flight, so a transaction's fixed cost (AddPartitions, EndTxn) is shared.
 */
export class TransactionBatcher {
  readonly #idle: AtomicProducer[];
  readonly #all: AtomicProducer[];
  #queue: Job[] = [];

  constructor(config: SluiceConfig, logger: Logger) {
    // Stable across restarts when SLUICE_INSTANCE_ID is set, so a restarted replica aborts what it left open at once.
    const instance = config.instanceId ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#all = Array.from({ length: WRITERS }, (_, i) => new AtomicProducer(config, logger, { name: `ingress-idempotent-${i}`, transactionalId: `${config.clientId}-ingress-${instance}-${i}` }));
    this.#idle = [...this.#all];
  }

  async init(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.init()));
  }

  write(records: OutgoingRecord[], follow: (metadata: RecordMetadata[]) => OutgoingRecord[]): Promise<RecordMetadata[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, follow, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const jobs: Job[] = [];
      let count = 0;
      while (this.#queue.length > 0 && (jobs.length === 0 || count + this.#queue[0]!.records.length <= MAX_TRANSACTION_RECORDS)) {
        const job = this.#queue.shift()!;
        jobs.push(job);
        count += job.records.length;
      }
      const producer = this.#idle.pop()!;
      void this.#run(producer, jobs).finally(() => {
        this.#idle.push(producer);
        this.#next();
      });
    }
  }

  async #run(producer: AtomicProducer, jobs: Job[]): Promise<void> {
    const records = jobs.flatMap((j) => j.records);
    const slices: RecordMetadata[][] = [];
    try {
      await producer.write(records, (metadata) => {
        let start = 0;
        return jobs.flatMap((job) => {
          const slice = metadata.slice(start, start + job.records.length);
          start += job.records.length;
          slices.push(slice);
          return job.follow(slice);
        });
      });
      jobs.forEach((job, i) => job.resolve(slices[i]!));
    } catch (error) {
      const failure = error instanceof SluiceError && error.statusCode === 503 ? error : new BrokerUnavailableError(`the events were not written: ${(error as Error).message}`, error);
      for (const job of jobs) job.reject(failure);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.close()));
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerUnavailableError(`Kafka did not answer within ${ms} ms; retry with the same Idempotency-Key`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** What the route hands over: the records to write and how to answer once they are written. */
export interface PreparedProduce {
  records: OutgoingRecord[];
  answer(acks: RecordAck[]): StoredResponse;
}

/** The idempotent path of a produce route: replay, 409, 422, or write the events and the response together. */
export class Idempotency {
  readonly #store: IdempotencyStore;
  readonly #writer: TransactionBatcher;
  readonly #inFlight = new Set<string>();
  /** Test hook: runs after the transaction committed and before the response is sent (a test kills the process here). */
  readonly #afterCommit: (() => void) | undefined;

  readonly #timeoutMs: number;

  constructor(store: IdempotencyStore, writer: TransactionBatcher, timeoutMs: number, afterCommit?: () => void) {
    this.#store = store;
    this.#timeoutMs = timeoutMs;
    this.#writer = writer;
    this.#afterCommit = afterCommit;
  }

  /** A response from the store for this request, or undefined when the key is new; 422 when the key was used for another request. */
  #replay(scope: string, print: string): (StoredResponse & { replayed: true }) | undefined {
    const entry = this.#store.get(scope);
    if (entry === undefined) return undefined;
    if (entry.fingerprint !== print) throw new IdempotencyKeyReusedError();
    return { status: entry.status, body: entry.body, replayed: true };
  }

  async produce(scope: string, print: string, prepared: PreparedProduce): Promise<StoredResponse & { replayed?: true }> {
    const known = this.#replay(scope, print);
    if (known) return known;
    if (this.#inFlight.has(scope)) throw new IdempotencyKeyInUseError();
    this.#inFlight.add(scope);
    let writing: Promise<StoredResponse> | undefined;
    try {
      // Bounded like the write: a store that cannot catch up (Kafka gone) is a 503, not a hung request.
      await withDeadline(this.#store.sync(), this.#timeoutMs);
      const stored = this.#replay(scope, print);
      if (stored) return stored;
      // Nothing to write (every event of a partial batch was invalid): the answer is the same on every retry.
      if (prepared.records.length === 0) return prepared.answer([]);
      writing = this.#write(scope, print, prepared);
      // Past the deadline the client gets a 503, but the key stays in flight (409) until the
      // transaction is settled: a retry then finds its response, or writes the events anew.
      writing.then(
        () => this.#inFlight.delete(scope),
        () => this.#inFlight.delete(scope),
      );
      return await withDeadline(writing, this.#timeoutMs);
    } finally {
      if (writing === undefined) this.#inFlight.delete(scope);
    }
  }

  async #write(scope: string, print: string, prepared: PreparedProduce): Promise<StoredResponse> {
    let response: StoredResponse | undefined;
    let entry: Entry | undefined;
    const at = Date.now();
    // Registered before the write, so a reader faster than this continuation is not missed.
    const readBack = this.#store.readBack(scope, at);
    try {
      await this.#writer.write(prepared.records, (metadata) => {
        response = prepared.answer(metadata.map((m) => ({ topic: m.topic, partition: m.partition, offset: m.offset.toString() })));
        entry = { fingerprint: print, status: response.status, body: response.body, at };
        return [this.#store.record(scope, entry)];
      });
    } catch (error) {
      this.#store.releaseReadBack(scope, at);
      throw error;
    }
    this.#store.remember(scope, entry!);
    // Answer once the commit marker is on the topic (see "Freshness" above): another replica's barrier then sees it.
    await readBack;
    this.#afterCommit?.();
    return response!;
  }
}
