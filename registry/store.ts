import type { SluiceConfig } from '../core/config.ts';
import { describeCause, RegistryError, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { internalReplication } from '../broker/replication.ts';
import { retry, retryPolicies } from '../core/retry.ts';
import { createKafka, errorTrail, type KafkaAdmin, type KafkaProducer, type PartitionBatch, type PartitionReader } from '../kafka/index.ts';
import type { Plan } from './commands.ts';
import { decodeRecord, encodeKey, encodeValue, RegistryState, type ApplyOutcome, type LogRecord, type RecordKey } from './state.ts';
import { withDeadline } from '../core/deadline.ts';

/**
 * The registry's state, kept in a single-partition compacted topic.
 *
 * Every instance replays the topic from the beginning and keeps following it;
 * all writes go through the log (never straight into memory), and an answer is
 * given only once this instance's own consumer has applied the record, so a
 * client reads its own writes. Instances do not elect a leader: a write is
 * planned on this instance's state, appended, and then checked by offset; if
 * another instance's record got in first and ours was rejected (see
 * state.ts), the key is repaired and the operation re-planned on the now
 * fresher state: optimistic concurrency over the log.
 */

/** A write (or repair) the log rejected because another instance wrote first: planned again, by the `conflict` policy. */
class LostRace extends Error {
  constructor() {
    super('lost a race with another registry instance');
  }
}
const MAX_REMEMBERED_OUTCOMES = 10_000;

interface Waiter {
  offset: number;
  resolve(): void;
  reject(error: unknown): void;
}

export interface RegistryStoreOptions {
  config: SluiceConfig;
  logger: Logger;
  topic: string;
}

/** The record, or why it cannot be read (such a record is rejected like any invalid one). */
function decode(key: Buffer | null, value: Buffer | null): LogRecord | string {
  try {
    return decodeRecord(key?.toString('utf8') ?? null, value?.toString('utf8') ?? null);
  } catch (error) {
    return `unreadable record: ${describeCause(error)}`;
  }
}

export class RegistryStore {
  readonly state = new RegistryState();
  readonly topic: string;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #admin: KafkaAdmin;
  readonly #producer: KafkaProducer;
  readonly #reader: PartitionReader;
  #reading: Promise<void> | undefined;
  /** The offset of the next record to apply. */
  #position = 0;
  readonly #outcomes = new Map<number, ApplyOutcome>();
  #waiters: Waiter[] = [];
  /** Writes of this instance run one after another: they would only conflict with each other. */
  #writeChain: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: RegistryStoreOptions) {
    this.topic = options.topic;
    this.#log = options.logger.child({ module: 'registry-store', topic: options.topic });
    this.#timeoutMs = options.config.produceTimeoutMs;
    const kafka = createKafka(options.config, options.logger, 'registry');
    this.#admin = kafka.admin();
    // acks=all, idempotent; the HTTP caller is answered within the store's timeout (50002) whatever the retries.
    this.#producer = kafka.producer({ retry: retryPolicies.reader });
    // No group: each instance reads the whole topic and never commits.
    this.#reader = kafka.partitionReader({ readCommitted: false, maxWaitMs: 250 });
  }

  /** Connects, replays the topic to its current end, and keeps following it. */
  async start(): Promise<void> {
    try {
      await this.#ensureTopic();
      await this.#producer.connect([this.topic]);
      this.#reader.assign([{ topic: this.topic, partition: 0, offset: 0n }]);
      this.#reading = this.#reader.run((batch) => this.#onBatch(batch));
      this.#reading.catch((error: unknown) => {
        // Writes and catch-ups now time out (50002) instead of hanging; the log says why.
        if (!this.#closed) this.#log.error({ err: error }, 'registry reader stopped');
      });
      await this.catchUp(Math.max(this.#timeoutMs, 30_000));
    } catch (error) {
      await this.close().catch((closeError: unknown) => this.#log.error({ err: closeError }, 'closing after a failed start failed too'));
      throw error;
    }
    this.#log.info({ position: this.#position, subjects: this.state.subjects().length }, 'registry state loaded');
  }

  async #ensureTopic(): Promise<void> {
    const { brokers } = await this.#admin.describeCluster();
    const replication = internalReplication(brokers.length);
    const created = await this.#admin.createTopics([
      {
        name: this.topic,
        partitions: 1,
        replicationFactor: replication.replicationFactor,
        configs: { 'cleanup.policy': 'compact', ...replication.configs },
      },
    ]);
    if (created.length > 0) this.#log.info({ created }, 'registry topic ensured');
    const partitions = await this.#admin.partitionCount(this.topic);
    if (partitions !== 1) {
      throw new SluiceError('SLUICE_REGISTRY_TOPIC_INVALID', `registry topic ${this.topic} has ${partitions} partitions; it needs exactly 1 so every instance applies records in one order`);
    }
  }

  #onBatch(batch: PartitionBatch): void {
    for (const message of batch.records) {
      const offset = Number(message.offset);
      if (offset < this.#position) continue;
      const record = decode(message.key, message.value);
      const outcome: ApplyOutcome = typeof record === 'string' ? { accepted: false, reason: record } : this.state.apply(record);
      if (!outcome.accepted) this.#log.warn({ offset, key: message.key?.toString('utf8'), reason: outcome.reason }, 'record rejected');
      this.#remember(offset, outcome);
      this.#position = offset + 1;
    }
    this.#wake();
  }

  #remember(offset: number, outcome: ApplyOutcome): void {
    this.#outcomes.set(offset, outcome);
    if (this.#outcomes.size > MAX_REMEMBERED_OUTCOMES) {
      const oldest = this.#outcomes.keys().next();
      if (!oldest.done) this.#outcomes.delete(oldest.value);
    }
  }

  #wake(): void {
    const ready = this.#waiters.filter((w) => w.offset < this.#position);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.offset >= this.#position);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the record at `offset` has been applied. */
  #waitFor(offset: number, timeoutMs = this.#timeoutMs): Promise<void> {
    if (offset < this.#position) return Promise.resolve();
    if (this.#closed) return Promise.reject(RegistryError.storeError('the registry store is closed'));
    let waiter!: Waiter;
    const applied = new Promise<void>((resolve, reject) => {
      waiter = { offset, resolve, reject };
      this.#waiters.push(waiter);
    });
    return withDeadline(applied, timeoutMs, () => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      throw RegistryError.timeout(`timed out after ${timeoutMs} ms waiting for offset ${offset} of ${this.topic} to be applied`);
    });
  }

  /**
   * Applies everything written to the topic so far (up to its high watermark).
   * Used at start and before answering "not found", so an id registered on
   * another instance a moment ago is found here too.
   */
  async catchUp(timeoutMs = this.#timeoutMs): Promise<void> {
    let high: number;
    try {
      high = Number((await this.#admin.listOffsets(this.topic, 'latest')).get(0) ?? 0n);
    } catch (error) {
      throw RegistryError.storeError(`cannot read the end offset of ${this.topic}: ${describeCause(error)}`, error);
    }
    if (high > 0) await this.#waitFor(high - 1, timeoutMs);
  }

  /**
   * Runs one write operation: plan on the current state, append, wait until
   * applied here, and re-plan if another instance's record won the race.
   */
  execute<T>(plan: (state: RegistryState) => Plan<T>): Promise<T> {
    const run = this.#writeChain.then(() => this.#execute(plan));
    // The chain only orders writes; each caller gets its own outcome from `run`.
    this.#writeChain = run.catch(() => undefined);
    return run;
  }

  async #execute<T>(plan: (state: RegistryState) => Plan<T>): Promise<T> {
    const lost = new LostRace();
    try {
      return await retry(
        retryPolicies.conflict,
        async (attempt) => {
          const { records, result } = plan(this.state);
          if (records.length === 0) return result;
          const rejected = await this.#append(records);
          if (rejected.length === 0) return result;
          this.#log.info({ attempt: attempt + 1, rejected: rejected.map((r) => r.reason) }, 'write lost a race with another registry instance; retrying');
          await this.#repair(rejected.map((r) => r.key));
          throw lost;
        },
        { retryable: (error) => error === lost },
      );
    } catch (error) {
      if (error !== lost) throw error;
      throw RegistryError.storeError(`gave up after ${retryPolicies.conflict.retries + 1} attempts: other registry instances kept writing conflicting records`);
    }
  }

  /** Appends records as one batch and returns those the log rejected. */
  async #append(records: LogRecord[]): Promise<{ key: RecordKey; reason: string }[]> {
    const first = await this.#produce(records);
    await this.#waitFor(first + records.length - 1);
    const rejected: { key: RecordKey; reason: string }[] = [];
    records.forEach((record, i) => {
      const outcome = this.#outcomes.get(first + i);
      if (outcome === undefined) throw RegistryError.storeError(`the outcome of offset ${first + i} was not recorded`);
      if (!outcome.accepted) rejected.push({ key: record.key, reason: outcome.reason });
    });
    return rejected;
  }

  /**
   * Re-states the accepted value of keys whose last record was rejected, so
   * compaction (which keeps only a key's last record) cannot resurrect the loser.
   */
  async #repair(keys: RecordKey[]): Promise<void> {
    let pending = keys;
    const lost = new LostRace();
    try {
      await retry(
        retryPolicies.conflict,
        async () => {
          const records = pending.flatMap((k) => this.state.repairRecords(k));
          if (records.length === 0) return;
          const rejected = await this.#append(records);
          if (rejected.length === 0) return;
          // A repair record can lose a race too; only its key still needs re-stating (a DELETE_SUBJECT repair writes other keys than its own).
          pending = rejected.map((r) => r.key);
          throw lost;
        },
        { retryable: (error) => error === lost },
      );
    } catch (error) {
      if (error !== lost) throw error;
      throw RegistryError.storeError(`could not repair ${pending.length} rejected record(s) in ${this.topic}`);
    }
  }

  async #produce(records: LogRecord[]): Promise<number> {
    const send = this.#producer
      .send(
        records.map((r) => {
          const value = encodeValue(r);
          // A null value is a tombstone (a key compaction then drops).
          return { topic: this.topic, partition: 0, key: Buffer.from(encodeKey(r.key)), value: value === null ? null : Buffer.from(value) };
        }),
      )
      .catch((error: unknown) => {
        throw RegistryError.storeError(`writing to ${this.topic} failed: ${describeCause(error)}`, error);
      });
    const started = Date.now();
    let answered = false;
    // A send still retrying when the caller was answered (50002) goes on; how it ends says why it was slow.
    send.then(
      () => answered && this.#log.warn({ elapsedMs: Date.now() - started }, 'a registry write was acknowledged after its caller timed out'),
      (error: unknown) => answered && this.#log.warn({ elapsedMs: Date.now() - started, causes: errorTrail(error) }, 'a registry write failed after its caller timed out'),
    );
    const metadata = await withDeadline(send, this.#timeoutMs, () => {
      answered = true;
      throw RegistryError.timeout(`Kafka did not acknowledge the write to ${this.topic} within ${this.#timeoutMs} ms`);
    });
    const base = metadata[0]?.offset;
    if (base === undefined || base < 0n) throw RegistryError.storeError(`Kafka returned no offset for the write to ${this.topic}`);
    return Number(base);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(RegistryError.storeError('the registry store closed before the write was applied'));
    const results = await Promise.allSettled([this.#reader.close(), this.#producer.close(), this.#admin.close()]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0)
      throw new AggregateError(
        failed.map((f) => f.reason as unknown),
        'closing the registry store failed',
      );
  }
}
