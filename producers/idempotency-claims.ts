import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { FetchedBatch, KafkaAdmin, Kafka, KafkaRecord, OutgoingRecord, PartitionReader } from '../kafka/index.ts';
import type { RecordAck } from './batching-producer.ts';
import { withDeadline } from '../core/deadline.ts';
import { ClaimTable, isKeyId, keyId, type ClaimRef, type HeldKey } from './claim-table.ts';

export type { ClaimRef, HeldKey };

/**
 * The idempotency topic holds claims: a replica writes one before it writes a
 * keyed request's events, and the first claim of a key in the topic's log
 * holds it. Claims that queued while one was being written go out together in
 * one record (a claims record), so a keyed request costs a slot in a shared
 * record, not a record, a transaction or a round trip of its own.
 *
 * A key's events carry the claim they were written under (CLAIM_HEADER), so
 * the original response is rebuilt from the events themselves: whatever
 * happened after they were written (the replica was killed before it
 * answered), a retry finds them.
 */

/** One claim in a claims record: the key's scope and the request's fingerprint; a takeover adds the claim it replaces. */
type Claim = [scope: string, fingerprint: string] | [scope: string, fingerprint: string, partition: number, offset: string, slot: number];

/**
 * A claims record's value (JSON). `v` tells these records from anything else on the topic, such as an earlier version's.
 * `d` (optional, so records stay version 2 for replicas that do not read it): each claim's key id (keyId of its
 * scope), so a reader need not hash every other replica's scopes; without it the reader hashes them.
 */
export interface ClaimsValue {
  v: 2;
  /** The writing process (SLUICE_INSTANCE_ID or host, pid and a random part). */
  o: string;
  c: Claim[];
  d?: string[];
}

/** The header that ties an event to the claim it was written under: `partition:offset:slot:index`. */
export const CLAIM_HEADER = 'sluice.idempotency';

export function refText(ref: ClaimRef): string {
  return `${ref.partition}:${ref.offset}:${ref.slot}`;
}

export function sameRef(a: ClaimRef, b: ClaimRef): boolean {
  return a.partition === b.partition && a.offset === b.offset && a.slot === b.slot;
}

/**
 * Applies one claims record to `keys`, in log order; every replica runs the
 * same rules on the same log, so all agree on who holds a key:
 * - a key not held, or held for longer than the retention window, goes to the claim;
 * - a takeover claim takes the key only from the claim it names (so of two
 *   replicas taking over at once, the first in the log wins);
 * - any other claim of a held key lost, and nothing remembers it.
 */
export function applyClaims(keys: ClaimTable, value: ClaimsValue, at: number, partition: number, offset: bigint, retentionMs: number): void {
  const ids = value.d !== undefined && value.d.length === value.c.length && value.d.every(isKeyId) ? value.d : undefined;
  value.c.forEach((claim, slot) => {
    const id = ids?.[slot] ?? keyId(claim[0]);
    const replaces = claim.length === 5 ? { partition: claim[2], offset: BigInt(claim[3]), slot: claim[4] } : undefined;
    keys.apply(id, { partition, offset, slot }, at, value.o, retentionMs, replaces);
  });
}

/** The claims record's value, or undefined for anything else. */
export function parseClaims(value: Buffer): ClaimsValue | undefined {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<ClaimsValue>;
    return parsed.v === 2 && typeof parsed.o === 'string' && Array.isArray(parsed.c) ? (parsed as ClaimsValue) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How far around a key's claims a retry looks for its events: their
 * timestamps come from the writing replica's clock just after its claim was
 * acknowledged; the margin covers a topic with LogAppendTime (the broker's
 * clock).
 */
const CLOCK_SKEW_MS = 5000;

/** The replica's view of the idempotency topic, followed continuously by a group-less reader. */
export class IdempotencyStore {
  readonly #topic: string;
  readonly #retentionMs: number;
  readonly #leaseMs: number;
  readonly #kafka: Kafka;
  readonly #admin: KafkaAdmin;
  readonly #reader: PartitionReader;
  readonly #log: Logger;
  readonly #keys = new ClaimTable();
  /** Partition → next offset to apply: records are applied once each, in log order. */
  readonly #applied = new Map<number, bigint>();
  /** Partition → this replica's own claims records, acknowledged and not applied yet (an earlier offset is not known yet). */
  readonly #own = new Map<number, Map<bigint, { value: ClaimsValue; at: number }>>();
  /** Partitions whose gap (records before an own one) is being read. */
  readonly #filling = new Set<number>();
  #waiters: { partition: number; offset: bigint; resolve: () => void }[] = [];
  #running: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #starting: Promise<void> | undefined;
  #started = false;

  constructor(kafka: Kafka, admin: KafkaAdmin, config: SluiceConfig, logger: Logger) {
    this.#topic = config.idempotencyTopic;
    this.#retentionMs = config.idempotencyRetentionMs;
    this.#leaseMs = config.idempotencyLeaseMs;
    this.#kafka = kafka;
    this.#admin = admin;
    // Claims are plain (not transactional) records: no need to wait for a last stable offset. The follower
    // only keeps the map current with other replicas' claims (a claim is decided by wrote(), which reads
    // what it lacks itself), so it waits for a batch of them rather than fetch per record.
    this.#reader = kafka.partitionReader({ name: 'ingress-idempotency', maxWaitMs: 100, minBytes: 64 * 1024, readCommitted: false });
    this.#log = logger;
  }

  get topic(): string {
    return this.#topic;
  }

  /** Whether start() has finished: every request checks it, so it is a field, not a promise to await. */
  get started(): boolean {
    return this.#started;
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
    // One partition: "first in the log" must be one order. Claims records have unique keys, so a topic
    // an earlier version created compacted keeps them all as well; deletion drops them past the window.
    await this.#admin.createTopics([{ name: this.#topic, partitions: 1, configs: { 'cleanup.policy': 'delete', 'retention.ms': String(this.#retentionMs) } }]);
    const [earliest, latest] = await Promise.all([this.#admin.listOffsets(this.#topic, 'earliest'), this.#admin.listOffsets(this.#topic, 'latest')]);
    for (const [partition, offset] of earliest) this.#applied.set(partition, offset);
    this.#reader.assign([...earliest].map(([partition, offset]) => ({ topic: this.#topic, partition, offset })));
    this.#running = this.#reader.runFetched((batch) => this.#apply(batch));
    this.#running.catch((error: unknown) => this.#log.error({ err: error }, 'the idempotency topic reader stopped; keyed requests wait for it'));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(60_000, this.#retentionMs)).unref();
    await Promise.all([...latest].map(([partition, offset]) => this.#until(partition, offset)));
    this.#started = true;
  }

  /**
   * The follower's batch, read in place: nearly every record of a busy replica is its own, applied when it was
   * acknowledged, so it is skipped by offset without a copy of its bytes or a parse of its claims.
   */
  #apply(batch: FetchedBatch): void {
    this.#applyEach(batch.partition, batch.nextOffset, (apply) => batch.visit((r) => apply(r.offset, r.value, r.timestampMs)));
  }

  /** Applies `records` (consecutive, from one read) past what was applied, then `nextOffset`. */
  #applyRecords(partition: number, records: readonly KafkaRecord[], nextOffset: bigint): void {
    this.#applyEach(partition, nextOffset, (apply) => {
      for (const r of records) apply(r.offset, r.value, Number(r.timestamp));
    });
  }

  /** Applies the records `each` hands over (in offset order) past what was applied, then `nextOffset` (past control records too). */
  #applyEach(partition: number, nextOffset: bigint, each: (apply: (offset: bigint, bytes: Buffer | null, timestamp: number) => void) => void): void {
    let next = this.#applied.get(partition) ?? 0n;
    each((offset, bytes, timestamp) => {
      // Applied already: this replica's own record, applied when it was acknowledged.
      if (offset < next) return;
      this.#applyRecord(partition, offset, bytes, timestamp);
      next = offset + 1n;
    });
    this.#advance(partition, nextOffset > next ? nextOffset : next);
  }

  /** The record at `offset`, the next one to apply: this replica's own (applied from its value as sent) or another's. */
  #applyRecord(partition: number, offset: bigint, bytes: Buffer | null, timestamp: number): void {
    const own = this.#own.get(partition)?.get(offset);
    const value = own?.value ?? (bytes === null ? undefined : parseClaims(bytes));
    if (value !== undefined) applyClaims(this.#keys, value, own?.at ?? timestamp, partition, offset, this.#retentionMs);
  }

  /** Moves the partition's applied offset to `next`, applies own records that are next in the log, and wakes who waited. */
  #advance(partition: number, next: bigint): void {
    const own = this.#own.get(partition);
    if (own !== undefined) {
      for (const offset of own.keys()) if (offset < next) own.delete(offset);
      for (let record = own.get(next); record !== undefined; record = own.get(next)) {
        applyClaims(this.#keys, record.value, record.at, partition, next, this.#retentionMs);
        own.delete(next);
        next += 1n;
      }
    }
    this.#applied.set(partition, next);
    this.#waiters = this.#waiters.filter((w) => {
      if (w.partition !== partition || next < w.offset) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once everything before `offset` of `partition` was applied. */
  #until(partition: number, offset: bigint): Promise<void> {
    if ((this.#applied.get(partition) ?? 0n) >= offset) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push({ partition, offset, resolve }));
  }

  /**
   * This replica's claims record `value` landed at `offset`: resolves once it
   * is applied, and with it everything before it. When the records before it
   * are this replica's own too (one replica, or no other writing meanwhile),
   * that is at once; otherwise the gap is read first.
   */
  wrote(value: ClaimsValue, at: number, partition: number, offset: bigint): Promise<void> {
    const applied = this.#applied.get(partition) ?? 0n;
    if (offset < applied) return Promise.resolve();
    let own = this.#own.get(partition);
    if (own === undefined) this.#own.set(partition, (own = new Map()));
    own.set(offset, { value, at });
    this.#advance(partition, applied);
    const done = this.#until(partition, offset + 1n);
    if ((this.#applied.get(partition) ?? 0n) <= offset) void this.#fill(partition);
    return done;
  }

  /** Reads the records missing before the partition's oldest own record, until none is. */
  async #fill(partition: number): Promise<void> {
    if (this.#filling.has(partition)) return;
    this.#filling.add(partition);
    try {
      while ((this.#own.get(partition)?.size ?? 0) > 0) {
        const from = this.#applied.get(partition) ?? 0n;
        const read = await this.#reader.readFrom(this.#topic, partition, from);
        if (read === undefined || read.nextOffset <= from) break;
        this.#applyRecords(partition, read.records, read.nextOffset);
      }
    } catch (error) {
      // The follower reads the gap later; the waiting requests are bounded by their deadline.
      this.#log.warn({ err: error, topic: this.#topic, partition }, 'could not read the idempotency topic; waiting for its follower');
    } finally {
      this.#filling.delete(partition);
    }
  }

  #sweep(): void {
    this.#keys.expire(Date.now() - this.#retentionMs);
  }

  /** Whether the key `id` (keyId of its scope) is held, within the retention window: cheap enough for every request. */
  has(id: string): boolean {
    const first = this.#keys.first(id);
    return first !== undefined && first >= Date.now() - this.#retentionMs;
  }

  /** Who holds the key `id` now, within the retention window: a copy, as the table's entry changes when another claim takes the key over. */
  held(id: string): HeldKey | undefined {
    const held = this.#keys.get(id);
    return held !== undefined && held.first >= Date.now() - this.#retentionMs ? held : undefined;
  }

  /** The current claim of the key `id` (after start). */
  current(id: string): ClaimRef | undefined {
    return this.#keys.get(id);
  }

  /** Whether `ref` is the current claim of the key `id`: how a claim writer tells whether its own claim holds the key. */
  holds(id: string, ref: ClaimRef): boolean {
    return this.#keys.holds(id, ref);
  }

  /** The fingerprint of the request that made a claim, read back from the topic (a retry is rare; the map keeps only where claims are). */
  async fingerprintOf(ref: ClaimRef): Promise<string | undefined> {
    const record = await this.#reader.readAt(this.#topic, ref.partition, ref.offset);
    const value = record?.value == null ? undefined : parseClaims(record.value);
    return value?.c[ref.slot]?.[1];
  }

  /** Whether the lease of `held`'s current claim ran out: its owner no longer writes under it. */
  expired(held: HeldKey): boolean {
    return Date.now() - held.at >= this.#leaseMs;
  }

  /**
   * The events already written for `held`, by their index in the request:
   * read from `topic` between the key's first claim and the end of its
   * current claim's lease (the bounded window its writers could write in).
   */
  async written(topic: string, held: HeldKey): Promise<Map<number, RecordAck>> {
    const tags = new Set([...(held.earlier ?? []), held].map(refText));
    const found = new Map<number, RecordAck>();
    const scan = this.#kafka.partitionReader({ name: 'ingress-idempotency-scan', readCommitted: false, maxWaitMs: 0 });
    try {
      const records = await scan.readBetween(topic, held.first - CLOCK_SKEW_MS, held.at + this.#leaseMs + CLOCK_SKEW_MS, (r) => tagOf(r, tags) !== undefined);
      for (const r of records) {
        const index = tagOf(r, tags)!;
        // The first copy of an index counts (a takeover writes only the indices it did not find).
        if (!found.has(index)) found.set(index, { topic: r.topic, partition: r.partition, offset: r.offset.toString() });
      }
    } finally {
      await scan.close();
    }
    return found;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#reader.close();
    await this.#running?.catch(() => undefined);
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }
}

/** The request index an event was written for, when it carries one of `tags`. */
function tagOf(record: KafkaRecord, tags: ReadonlySet<string>): number | undefined {
  for (const [name, value] of record.headers) {
    if (name !== CLAIM_HEADER || value === null) continue;
    const text = value.toString('utf8');
    const cut = text.lastIndexOf(':');
    if (tags.has(text.slice(0, cut))) return Number(text.slice(cut + 1));
  }
  return undefined;
}

/** One request's claim: its key's scope and id (keyId), fingerprint, and for a takeover the claim it replaces. */
export interface ClaimJob {
  scope: string;
  id: string;
  fingerprint: string;
  replaces?: ClaimRef;
}

/** What a ClaimWriter needs from Kafka and from the store (injected: unit-tested with fakes). */
export interface ClaimPort {
  /** Writes one record; resolves with where it landed. */
  send(record: OutgoingRecord): Promise<{ partition: number; offset: bigint }>;
  /** Resolves once the store applied the claims record `value`, written at `offset` of `partition` with timestamp `at`. */
  wrote(value: ClaimsValue, at: number, partition: number, offset: bigint): Promise<void>;
  /** Whether `ref` is the claim that holds the key `id` now. */
  holds(id: string, ref: ClaimRef): boolean;
}

interface QueuedClaim {
  job: ClaimJob;
  resolve(ref: ClaimRef | undefined): void;
  reject(error: unknown): void;
}

/**
 * Claims, written together: whatever queued while a claims record was being
 * written (and read back) goes out in the next one, at most `inFlight` at
 * once. A claim is settled once the store has read its record back: by then
 * it has also read every earlier claim, so whether this one holds its key is
 * decided, the same way on every replica.
 */
export class ClaimWriter {
  readonly #port: ClaimPort;
  readonly #topic: string;
  readonly #owner: string;
  readonly #inFlight: number;
  readonly #maxClaims: number;
  readonly #timeoutMs: number;
  #running = 0;
  #sequence = 0;
  #queue: QueuedClaim[] = [];

  /** `timeoutMs`: longest wait for a claims record to be read back (its send is bounded by the producer). */
  constructor(port: ClaimPort, topic: string, owner: string, options: { inFlight?: number; maxClaims?: number; timeoutMs?: number } = {}) {
    this.#port = port;
    this.#topic = topic;
    this.#owner = owner;
    this.#inFlight = options.inFlight ?? 1;
    this.#maxClaims = options.maxClaims ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Resolves with the claim when it holds the key, undefined when an earlier claim does. */
  claim(job: ClaimJob): Promise<ClaimRef | undefined> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    while (this.#running < this.#inFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxClaims);
      this.#running += 1;
      void this.#write(batch).finally(() => {
        this.#running -= 1;
        this.#next();
      });
    }
  }

  async #write(batch: QueuedClaim[]): Promise<void> {
    try {
      const value: ClaimsValue = { v: 2, o: this.#owner, c: batch.map(({ job }) => claimOf(job)), d: batch.map(({ job }) => job.id) };
      this.#sequence += 1;
      const at = Date.now();
      const { partition, offset } = await this.#port.send({
        topic: this.#topic,
        partition: 0,
        key: Buffer.from(`${this.#owner}:${this.#sequence}`),
        value: Buffer.from(JSON.stringify(value)),
        timestamp: BigInt(at),
      });
      await withDeadline(this.#port.wrote(value, at, partition, offset), this.#timeoutMs, () => {
        throw new BrokerUnavailableError(`Kafka did not answer within ${this.#timeoutMs} ms; retry with the same Idempotency-Key`);
      });
      batch.forEach((queued, slot) => {
        const ref = { partition, offset, slot };
        queued.resolve(this.#port.holds(queued.job.id, ref) ? ref : undefined);
      });
    } catch (error) {
      for (const queued of batch) queued.reject(error);
    }
  }
}

function claimOf(job: ClaimJob): Claim {
  const { scope, fingerprint, replaces } = job;
  return replaces === undefined ? [scope, fingerprint] : [scope, fingerprint, replaces.partition, replaces.offset.toString(), replaces.slot];
}
