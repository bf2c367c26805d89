import { hash } from 'node:crypto';
import { hostname } from 'node:os';
import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError, IdempotencyKeyInUseError, IdempotencyKeyReusedError, SluiceError } from '../core/errors.ts';
import { splitByCounts } from '../core/arrays.ts';
import { stringifyJson } from '../core/json.ts';
import type { Logger } from '../core/logger.ts';
import type { RecordAck } from './batching-producer.ts';
import {
  AtomicProducer,
  type AtomicWriteOptions,
  type AtomicWritten,
  type FollowUp,
  type KafkaAdmin,
  type Kafka,
  type OutgoingRecord,
  type PartitionBatch,
  type PartitionReader,
  type RecordMetadata,
} from '../kafka/index.ts';

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
 * Freshness: a key is known new only once the replica's reader has applied
 * the topic up to its last stable offset as of the request's arrival (one
 * ListOffsets per transaction, taken as it begins, after every request in it
 * arrived). That barrier runs while the events are sent; it is awaited before
 * the responses are written and the transaction committed, and a key found
 * known then aborts the transaction (TransactionBatcher). The LSO
 * only passes a transaction once the coordinator has written its commit
 * marker, which happens after EndTxn has already returned to the producer; so
 * the replica that wrote a response answers only once its own read_committed
 * reader has read it back. A retry sent after that answer, whichever replica
 * takes it, then always finds it. Two replicas given the same new key at the
 * same instant can both write (there is no lock across
 * replicas); see README.
 */

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** The value of a record on the idempotency topic (JSON). */
interface Entry extends StoredResponse {
  fingerprint: string;
  /** Epoch ms of the first request. */
  at: number;
}

/**
 * What the map keeps of an entry: where its record is. A retry (rare) reads
 * the record back from Kafka; following the topic then costs no parsing and
 * no copies, and the map holds three numbers per key of the retention window.
 */
interface Held {
  /** Epoch ms: the record's timestamp, for the retention window. */
  at: number;
  partition: number;
  offset: number;
}

const KEY_TEXT = /^[\x21-\x7e]{1,255}$/;
/**
 * Transactions in flight at once per replica: one. A transaction's fixed cost
 * (AddPartitionsToTxn, the coordinator's log writes and markers, EndTxn, a
 * barrier, a read-back fetch) is paid by the ingress and the broker alike, so
 * one transaction carrying everything that queued meanwhile serves more keyed
 * requests than several smaller ones.
 */
const IN_FLIGHT = 1;
/**
 * Transactional producers, taken in turn. The coordinator completes a
 * transaction (its markers) after EndTxn has returned, and refuses the same
 * transactional id's next AddPartitionsToTxn with CONCURRENT_TRANSACTIONS
 * until then: back-to-back transactions on one id spend their time in those
 * retries. With two ids, one's transaction completes while the other's runs
 * (a scratch loop of 60-event transactions on the bench broker: one id 7.9k
 * events/s, two in turn 18.1k, with half the client CPU and 40% less broker
 * CPU per event).
 */
const WRITERS = 2;
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
  return hash('sha256', `${route}\n${partial ? 'partial' : 'atomic'}\n${canonicalJson({ batch, events })}`, 'base64url');
}

/** stringifyJson's text, at JSON.stringify's speed for the usual body: parsed events hold no Buffers, and a BigInt (a number beyond 2^53) makes JSON.stringify throw. */
function canonicalJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return stringifyJson(value);
  }
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
  readonly #entries = new Map<string, Held>();
  /** Partition → next offset applied to the map. */
  readonly #applied = new Map<number, bigint>();
  #waiters: { target: ReadonlyMap<number, bigint>; resolve: () => void }[] = [];
  #running: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #starting: Promise<void> | undefined;

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
      if (r.value === null) {
        this.#entries.delete(scope);
        continue;
      }
      const offset = Number(r.offset);
      const held = this.#entries.get(scope);
      // Most records are this replica's own, remembered when their transaction committed.
      if (held?.offset === offset && held.partition === r.partition) continue;
      this.#entries.set(scope, { at: Number(r.timestamp), partition: r.partition, offset });
    }
    this.#applied.set(batch.partition, batch.nextOffset);
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.#reached(w.target)) return true;
      w.resolve();
      return false;
    });
  }

  #reached(target: ReadonlyMap<number, bigint>): boolean {
    for (const [partition, offset] of target) if ((this.#applied.get(partition) ?? 0n) < offset) return false;
    return true;
  }

  #until(target: ReadonlyMap<number, bigint>): Promise<void> {
    if (this.#reached(target)) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push({ target, resolve }));
  }

  /**
   * Resolves once the reader has applied `written` (records this replica wrote
   * to the topic), which it reads only once their transaction's commit marker
   * is there: from then on every replica's barrier sees them.
   */
  readBack(written: readonly RecordMetadata[]): Promise<void> {
    const target = new Map<number, bigint>();
    for (const m of written) if (m.offset + 1n > (target.get(m.partition) ?? 0n)) target.set(m.partition, m.offset + 1n);
    return this.#until(target);
  }

  #sweep(): void {
    const oldest = Date.now() - this.#retentionMs;
    for (const [scope, held] of this.#entries) if (held.at < oldest) this.#entries.delete(scope);
  }

  /** Resolves once every record committed on the topic before the call was applied: one ListOffsets of its own. */
  async barrier(): Promise<void> {
    await this.start();
    return this.#barrier();
  }

  async #barrier(): Promise<void> {
    const ends = await this.#reader.ends();
    await this.#until(new Map(ends.map((p) => [p.partition, p.offset])));
  }

  /** The entry for `scope` within the retention window (read from the topic); undefined when there is none. */
  async get(scope: string): Promise<Entry | undefined> {
    const held = this.#held(scope);
    if (held === undefined) return undefined;
    const record = await this.#reader.readAt(this.#topic, held.partition, BigInt(held.offset));
    if (record?.value == null || record.key?.toString('utf8') !== scope) {
      this.#log.warn({ partition: held.partition, offset: held.offset }, 'an idempotency record is gone from the topic (compacted or deleted); treating its key as new');
      return undefined;
    }
    try {
      return JSON.parse(record.value.toString('utf8')) as Entry;
    } catch (error) {
      this.#log.warn({ err: error, partition: held.partition, offset: held.offset }, 'ignoring an unreadable idempotency record');
      return undefined;
    }
  }

  /** Whether `scope` is known (no read): cheap enough for every request. */
  has(scope: string): boolean {
    return this.#held(scope) !== undefined;
  }

  /** Where `scope`'s entry is, if it is within the retention window. */
  #held(scope: string): Held | undefined {
    const held = this.#entries.get(scope);
    return held !== undefined && held.at >= Date.now() - this.#retentionMs ? held : undefined;
  }

  /** The record that stores `entry` for `scope`. */
  record(scope: string, entry: Entry): OutgoingRecord {
    return { topic: this.#topic, key: Buffer.from(scope, 'utf8'), value: Buffer.from(JSON.stringify(entry), 'utf8'), timestamp: BigInt(entry.at) };
  }

  /** Known at once on this replica, once its transaction committed (`written`: where `record` landed); the reader applies the same record again later. */
  remember(record: OutgoingRecord, written: RecordMetadata): void {
    this.#entries.set(record.key!.toString('utf8'), { at: Number(record.timestamp), partition: written.partition, offset: Number(written.offset) });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#reader.close();
    await this.#running?.catch(() => undefined);
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }
}

/** A transactional writer: AtomicProducer, or a fake in the unit tests. */
export interface TransactionWriter {
  init(): Promise<void>;
  write(records: readonly OutgoingRecord[], follow: (metadata: RecordMetadata[]) => Promise<FollowUp>, options: AtomicWriteOptions): Promise<AtomicWritten | 'aborted'>;
  close(): Promise<void>;
}

/** One keyed request's part of a transaction. */
export interface WriteJob {
  records: OutgoingRecord[];
  /** Asked once the store has read what was committed before the transaction began: the stored answer when the key turned out to be known (its events must then not be committed); rejects with 422 for a key used with another body. */
  stored(): Promise<StoredResponse | undefined>;
  /** The records to write in the same transaction, once the events' offsets are known. */
  follow(metadata: RecordMetadata[]): OutgoingRecord[];
}

/** Where the job's events and the records its `follow` gave landed; or the stored answer that replaced the write. */
export type WriteOutcome = { metadata: RecordMetadata[]; followed: RecordMetadata[] } | { stored: StoredResponse };

interface Job extends WriteJob {
  resolve(outcome: WriteOutcome): void;
  reject(error: unknown): void;
}

type Verdict = { write: true } | { stored: StoredResponse } | { error: unknown };

/**
 * Keyed requests, batched into transactions: whatever queued while a
 * transaction ran goes out in the next one (at most `inFlight` at once, on
 * the writers in turn), so a transaction's fixed cost (AddPartitions, EndTxn)
 * is shared.
 *
 * Each transaction takes one freshness barrier as it begins (every job in it
 * arrived before that), which runs while the events are sent. Before the
 * responses are written, the barrier is awaited and the store asked again for
 * every job; if a job's key turned out to be known (its first request was
 * committed elsewhere and this replica had not read it yet), the transaction
 * is aborted, that job is answered from the store, and the others go back to
 * the head of the queue for the next transaction.
 */
export class TransactionBatcher {
  /** Longest idle first, so a transactional id's last transaction has had the most time to complete. */
  readonly #idle: TransactionWriter[];
  readonly #all: TransactionWriter[];
  readonly #inFlight: number;
  #running = 0;
  readonly #options: AtomicWriteOptions;
  readonly #fresh: () => Promise<void>;
  #queue: Job[] = [];

  /** `fresh`: resolves once the store has read everything committed before the call. */
  constructor(writers: TransactionWriter[], responseTopic: string, fresh: () => Promise<void>, inFlight = 1) {
    this.#inFlight = inFlight;
    this.#all = writers;
    this.#fresh = fresh;
    this.#idle = [...writers];
    this.#options = { followTopics: [responseTopic] };
  }

  /** The ingress's batcher: WRITERS transactional producers taken in turn, IN_FLIGHT transactions at once, writing the responses to the idempotency topic. */
  static forIngress(config: SluiceConfig, logger: Logger, store: IdempotencyStore): TransactionBatcher {
    // Stable across restarts when SLUICE_INSTANCE_ID is set, so a restarted replica aborts what it left open at once.
    const instance = config.instanceId ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const writers = Array.from({ length: WRITERS }, (_, i) => new AtomicProducer(config, logger, { name: `ingress-idempotent-${i}`, transactionalId: `${config.clientId}-ingress-${instance}-${i}` }));
    // Bounded like the write: a store that cannot catch up (Kafka gone) fails the transaction's requests with a 503, it does not hang them.
    return new TransactionBatcher(writers, config.idempotencyTopic, () => withDeadline(store.barrier(), config.produceTimeoutMs), IN_FLIGHT);
  }

  async init(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.init()));
  }

  write(job: WriteJob): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...job, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    while (this.#running < this.#inFlight && this.#idle.length > 0 && this.#queue.length > 0) {
      const jobs: Job[] = [];
      let count = 0;
      while (this.#queue.length > 0 && (jobs.length === 0 || count + this.#queue[0]!.records.length <= MAX_TRANSACTION_RECORDS)) {
        const job = this.#queue.shift()!;
        jobs.push(job);
        count += job.records.length;
      }
      const writer = this.#idle.shift()!;
      this.#running += 1;
      void this.#run(writer, jobs).finally(() => {
        this.#running -= 1;
        this.#idle.push(writer);
        this.#next();
      });
    }
  }

  async #run(writer: TransactionWriter, jobs: Job[]): Promise<void> {
    const records = jobs.flatMap((j) => j.records);
    const fresh = this.#fresh();
    fresh.catch(() => undefined);
    let slices: RecordMetadata[][] = [];
    let follows: OutgoingRecord[][] = [];
    let verdicts: Verdict[] = [];
    try {
      const written = await writer.write(
        records,
        async (metadata) => {
          verdicts = await verdictsOf(jobs, fresh);
          if (verdicts.some((v) => !('write' in v))) return 'abort';
          slices = splitByCounts(
            metadata,
            jobs.map((job) => job.records.length),
          );
          follows = jobs.map((job, i) => job.follow(slices[i]!));
          return follows.flat();
        },
        this.#options,
      );
      if (written !== 'aborted') {
        const followed = splitByCounts(
          written.followed,
          follows.map((f) => f.length),
        );
        jobs.forEach((job, i) => job.resolve({ metadata: slices[i]!, followed: followed[i]! }));
        return;
      }
      const again: Job[] = [];
      jobs.forEach((job, i) => {
        const verdict = verdicts[i]!;
        if ('stored' in verdict) job.resolve({ stored: verdict.stored });
        else if ('error' in verdict) job.reject(verdict.error);
        else again.push(job);
      });
      this.#queue.unshift(...again);
    } catch (error) {
      const failure = error instanceof SluiceError && error.statusCode === 503 ? error : new BrokerUnavailableError(`the events were not written: ${(error as Error).message}`, error);
      for (const job of jobs) job.reject(failure);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.close()));
  }
}

async function verdictsOf(jobs: readonly WriteJob[], fresh: Promise<void>): Promise<Verdict[]> {
  try {
    await fresh;
  } catch (error) {
    return jobs.map(() => ({ error }));
  }
  return Promise.all(
    jobs.map(async (job): Promise<Verdict> => {
      try {
        const stored = await job.stored();
        return stored === undefined ? { write: true } : { stored };
      } catch (error) {
        return { error };
      }
    }),
  );
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
  async #replay(scope: string, print: string): Promise<(StoredResponse & { replayed: true }) | undefined> {
    if (!this.#store.has(scope)) return undefined;
    const entry = await this.#store.get(scope);
    if (entry === undefined) return undefined;
    if (entry.fingerprint !== print) throw new IdempotencyKeyReusedError();
    return { status: entry.status, body: entry.body, replayed: true };
  }

  async produce(scope: string, print: string, prepared: PreparedProduce): Promise<StoredResponse & { replayed?: true }> {
    const known = await this.#replay(scope, print);
    if (known) return known;
    if (this.#inFlight.has(scope)) throw new IdempotencyKeyInUseError();
    this.#inFlight.add(scope);
    const writing = this.#write(scope, print, prepared);
    // Past the deadline the client gets a 503, but the key stays in flight (409) until the
    // transaction is settled: a retry then finds its response, or writes the events anew.
    writing.then(
      () => this.#inFlight.delete(scope),
      () => this.#inFlight.delete(scope),
    );
    return withDeadline(writing, this.#timeoutMs);
  }

  async #write(scope: string, print: string, prepared: PreparedProduce): Promise<StoredResponse & { replayed?: true }> {
    if (prepared.records.length === 0) {
      // Nothing to write (every event of a partial batch was invalid): the answer is the same on every retry.
      await this.#store.barrier();
      return (await this.#replay(scope, print)) ?? prepared.answer([]);
    }
    let response: StoredResponse | undefined;
    let record: OutgoingRecord | undefined;
    const outcome = await this.#writer.write({
      records: prepared.records,
      stored: () => this.#replay(scope, print),
      follow: (metadata) => {
        response = prepared.answer(metadata.map((m) => ({ topic: m.topic, partition: m.partition, offset: m.offset.toString() })));
        record = this.#store.record(scope, { fingerprint: print, status: response.status, body: response.body, at: Date.now() });
        return [record];
      },
    });
    if ('stored' in outcome) return { ...outcome.stored, replayed: true };
    this.#store.remember(record!, outcome.followed[0]!);
    // Answer once the commit marker is on the topic (see "Freshness" above): another replica's barrier then sees it.
    await this.#store.readBack(outcome.followed);
    this.#afterCommit?.();
    return response!;
  }
}
