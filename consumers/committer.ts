import type { Logger } from '../core/logger.ts';
import type { GroupGeneration, OutgoingRecord, OutputOffset, OutputUnit, UnitOrder, WorkerOutput } from '../kafka/index.ts';

/**
 * Commits the chunks of every partition of a worker through its one output
 * (one transactional producer, or one idempotent producer and the group's
 * offset commit), in rounds: a round is one output unit (a transaction).
 *
 * Order: chunks are committed in the order they were submitted, so a
 * partition's chunk k+1 lands in the same round as chunk k or a later one,
 * never an earlier one, and its offset only grows.
 *
 * Sizing: a round takes the queued chunks in parts of at most `requestBytes`
 * of records (at least one chunk; one produce request each) and sends each
 * part (`sendsInFlight` at once) while the partitions go on handling records. It commits, with the
 * offset of each partition's last chunk, once the queue is empty after a part
 * (at low rates, so at once: nothing waits for a timer) or once it holds
 * `round.maxRecords` input records, `round.maxBytes` of outputs, or has been
 * open `round.maxMs`. Under load a round therefore spans many fetched batches
 * and partitions, and its fixed cost (AddOffsetsToTxn, one TxnOffsetCommit,
 * EndTxn and the markers) is paid per round, not per partition or chunk.
 *
 * Overlap: with an output of two units in flight (the exactly-once output's
 * two producers), the next round takes the queued chunks, sends them and its
 * offsets while the round before waits for its commit (EndTxn), and commits
 * only once that one did; a third waits for the first to end.
 *
 * Backpressure: chunks wait in the queue while a round commits, up to
 * `maxQueuedRecords` (then submit()ers wait in room(), which is the worker's
 * backpressure on fetching).
 *
 * Failure: a round that fails rejects its chunks and every chunk queued after
 * it (they follow a chunk that did not commit), and any chunk of those
 * partitions submitted later that continues past them; the worker reads those
 * partitions again from their committed offsets. A chunk of a partition the
 * member stopped holding since it was fetched is rejected without trying: its
 * partition belongs to someone else now, or will be read again after the
 * rebalance, and the broker would refuse its offsets anyway.
 */

export interface Chunk {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: bigint;
  lastOffset: bigint;
  /** Input records in the chunk. */
  count: number;
  /** Outputs and dead letters, in input order. */
  readonly records: OutgoingRecord[];
  outputs: number;
  deadLetters: number;
  bytes: number;
  /** The member's holding of the partition the records were fetched in (PartitionBatch.tenure). */
  readonly tenure: number;
  /** Which read of the partition in that holding the records come from: the worker starts a new one each time it reads the partition again from its committed offset. */
  readonly read: number;
  leaderEpoch: number;
  readonly highWatermark: bigint;
}

/** Why a chunk was not committed. */
export class ChunkNotCommittedError extends Error {
  /** True when its generation is stale: the rebalance takes care of its partition, there is nothing to read again. */
  readonly stale: boolean;
  constructor(message: string, stale: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ChunkNotCommittedError';
    this.stale = stale;
  }
}

/** When a round (a transaction) stops taking chunks and commits; whichever comes first, the queue running empty included. */
export interface RoundLimits {
  /** Input records. */
  maxRecords: number;
  /** Output bytes (Chunk.bytes). */
  maxBytes: number;
  /** Milliseconds since its first part was taken. */
  maxMs: number;
}

export interface CommitterOptions {
  output: WorkerOutput;
  /** The membership a chunk commits its offset with; undefined once the member no longer holds its partition since it was fetched. */
  generationOf: (chunk: Chunk) => GroupGeneration | undefined;
  /** Most record bytes per send (beyond its first chunk): one produce request, whose per-partition batches stay under the broker's message.max.bytes. */
  requestBytes: number;
  /** Sends of a round in flight at once (a produce round trip is mostly waiting on the broker's replication). */
  sendsInFlight: number;
  round: RoundLimits;
  /** Most input records queued before submit()ers wait. */
  maxQueuedRecords: number;
  log: Logger;
  /** After each round: committed (true) or failed (false), with its chunks. */
  onRound?: (chunks: readonly Chunk[], committed: boolean) => void;
  /** The clock of round.maxMs (tests pass their own). */
  now?: () => number;
}

/** What a round has taken so far. */
export interface RoundSize {
  records: number;
  bytes: number;
  openedAt: number;
}

/** Whether a round of `size` takes more chunks: more are queued and no limit is reached. */
export function roundTakesMore(size: RoundSize, limits: RoundLimits, queued: boolean, now: number): boolean {
  return queued && size.records < limits.maxRecords && size.bytes < limits.maxBytes && now - size.openedAt < limits.maxMs;
}

/** The round before's outcome as a UnitOrder's `after`: rejects when it did not commit (never unhandled). */
function afterCommitted(before: Promise<boolean>): Promise<void> {
  const after = before.then((committed) => {
    if (!committed) throw new Error('the transaction before this one was not committed');
  });
  after.catch(() => undefined);
  return after;
}

/** Whether two chunks (or a chunk and a failure's record) come from the same read of their partition: one holding, one read in it. */
function sameRead(a: Pick<Chunk, 'tenure' | 'read'>, b: Pick<Chunk, 'tenure' | 'read'>): boolean {
  return a.tenure === b.tenure && a.read === b.read;
}

interface Pending {
  chunk: Chunk;
  resolve: () => void;
  reject: (error: ChunkNotCommittedError) => void;
}

export class Committer {
  readonly #o: CommitterOptions;
  #queue: Pending[] = [];
  #queuedRecords = 0;
  #running: Promise<void> | undefined;
  /** Wakes #run() waiting for a chunk while a round commits. */
  #arrived: (() => void) | undefined;
  #waiters: (() => void)[] = [];
  /**
   * Per partition, the first offset of the chunks a failed round rejected,
   * and the read they came from: a chunk of the same read submitted later
   * that starts past it continues from records that were not committed, and
   * is rejected too. A chunk of a later read, or of a new holding of the
   * partition (a new tenure), is the partition read again from its committed
   * offset. That offset can be past the failed chunks: a round whose commit
   * the broker completed after its answer was lost (a transaction coordinator
   * killed after it logged the commit) fails here yet commits. Judged by
   * offset alone, every chunk of the new read started past the failed ones
   * and was rejected, and the partition was read again forever.
   */
  readonly #failedFrom = new Map<string, { offset: bigint; tenure: number; read: number }>();

  constructor(options: CommitterOptions) {
    this.#o = options;
  }

  /** Queues `chunk`; resolves once it is committed, rejects with ChunkNotCommittedError when it is not. */
  submit(chunk: Chunk): Promise<void> {
    const key = `${chunk.topic}\u0000${chunk.partition}`;
    const failed = this.#failedFrom.get(key);
    if (failed !== undefined) {
      // Its partition's handler may not have heard of the failure yet: committing this chunk would skip the records that failed.
      if (sameRead(failed, chunk) && chunk.firstOffset > failed.offset) return Promise.reject(new ChunkNotCommittedError('an earlier chunk of its partition was not committed', false));
      this.#failedFrom.delete(key);
    }
    const committed = new Promise<void>((resolve, reject) => this.#queue.push({ chunk, resolve, reject }));
    this.#queuedRecords += chunk.count;
    this.#arrived?.();
    this.#running ??= this.#run();
    return committed;
  }

  /** Resolves when there is room for more chunks. */
  room(): Promise<void> {
    if (this.#queuedRecords < this.#o.maxQueuedRecords) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Resolves once everything submitted so far is committed or rejected. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Rounds one after the other; with an output of unitsInFlight > 1, the next
   * round begins as soon as the one before is prepared (only its commit is
   * left), and commits after it (UnitOrder). At most unitsInFlight rounds are
   * open, so each of the output's producers has one transaction at a time.
   */
  async #run(): Promise<void> {
    const inFlight = Math.max(1, this.#o.output.unitsInFlight ?? 1);
    // The rounds not known to be over, oldest first: whether each committed, and whether that is known yet.
    const open: { outcome: Promise<boolean>; settled: boolean }[] = [];
    try {
      for (;;) {
        if (this.#queue.length === 0 && open.length > 0) {
          // Nothing queued: every open round ending, or a chunk arriving, whichever comes first.
          const arrived = new Promise<void>((resolve) => (this.#arrived = resolve));
          const ended = await Promise.race([Promise.all(open.map((r) => r.outcome)).then(() => true), arrived.then(() => false)]);
          this.#arrived = undefined;
          if (ended) open.length = 0;
          continue;
        }
        if (this.#queue.length === 0) return;
        while (open.length >= inFlight) await open.shift()!.outcome;
        // A round still open when this one takes its chunks decides whether this one may commit; one already
        // over does not (a failed one emptied the queue: what this round takes was submitted since).
        const last = open[open.length - 1];
        let order: UnitOrder | undefined;
        const ready = new Promise<void>((prepared) => {
          if (inFlight > 1) order = { prepared, after: last && !last.settled ? afterCommitted(last.outcome) : Promise.resolve() };
        });
        const entry = { outcome: this.#round(order), settled: false };
        void entry.outcome.then(() => (entry.settled = true));
        open.push(entry);
        await (order ? Promise.race([ready, entry.outcome]) : entry.outcome);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** The next queued chunks, up to requestBytes of records (at least one chunk); those no longer held are rejected here. */
  #takePart(): (Pending & { generation: GroupGeneration })[] {
    const part: (Pending & { generation: GroupGeneration })[] = [];
    let bytes = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (part.length > 0 && bytes + next.chunk.bytes > this.#o.requestBytes) break;
      this.#queue.shift();
      this.#release(next.chunk.count);
      const generation = this.#o.generationOf(next.chunk);
      if (!generation) {
        next.reject(new ChunkNotCommittedError('the member no longer holds the partition the chunk was fetched from', true));
        continue;
      }
      part.push({ ...next, generation });
      bytes += next.chunk.bytes;
    }
    return part;
  }

  /**
   * The offsets a round commits, with the membership now: a round can outlast
   * a change of member epoch (consumer protocol) that left its partitions
   * with the member. A partition the member stopped holding keeps the
   * membership it was fetched under, which the group coordinator refuses, so
   * the round is aborted rather than its outputs committed without it.
   */
  #offsets(lasts: Iterable<{ chunk: Chunk; generation: GroupGeneration }>): OutputOffset[] {
    const offsets: OutputOffset[] = [];
    for (const { chunk, generation } of lasts) {
      offsets.push({ topic: chunk.topic, partition: chunk.partition, offset: chunk.lastOffset + 1n, leaderEpoch: chunk.leaderEpoch, generation: this.#o.generationOf(chunk) ?? generation });
    }
    return offsets;
  }

  /**
   * One round; resolves whether it committed (never rejects). With `order`
   * (see UnitOrder), the next round may begin once its unit is prepared; a
   * round that fails first clears the queue and rejects it before it resolves.
   */
  async #round(order: UnitOrder | undefined): Promise<boolean> {
    const now = this.#o.now ?? (() => performance.now());
    const round: Pending[] = [];
    // The last chunk of a partition in the round carries its offset.
    const offsets = new Map<string, { chunk: Chunk; generation: GroupGeneration }>();
    const size: RoundSize = { records: 0, bytes: 0, openedAt: now() };
    let unit: OutputUnit | undefined;
    const sending: Promise<void>[] = [];
    try {
      for (;;) {
        const part = this.#takePart();
        const records: OutgoingRecord[] = [];
        for (const pending of part) {
          const { chunk, generation } = pending;
          round.push(pending);
          for (const record of chunk.records) records.push(record);
          size.records += chunk.count;
          size.bytes += chunk.bytes;
          offsets.set(`${chunk.topic}\u0000${chunk.partition}`, { chunk, generation });
        }
        const more = roundTakesMore(size, this.#o.round, this.#queue.length > 0, now());
        if (round.length === 0) {
          if (more) continue;
          return true;
        }
        unit ??= this.#o.output.begin();
        if (!more) {
          await Promise.all(sending);
          await unit.commit(records, this.#offsets(offsets.values()), order);
          break;
        }
        if (records.length > 0) {
          const sent = unit.send(records);
          // Awaited below or, after a failure, settled before the unit is aborted.
          sent.catch(() => undefined);
          sending.push(sent);
          if (sending.length >= this.#o.sendsInFlight) await sending.shift();
        }
      }
    } catch (cause) {
      await Promise.allSettled(sending);
      const error = unit ? await unit.abort(cause).catch(() => cause) : cause;
      const failed = [...round, ...this.#queue];
      this.#queue = [];
      for (const { chunk } of failed) {
        const key = `${chunk.topic}\u0000${chunk.partition}`;
        const from = this.#failedFrom.get(key);
        if (from === undefined || !sameRead(from, chunk) || chunk.firstOffset < from.offset) {
          this.#failedFrom.set(key, { offset: chunk.firstOffset, tenure: chunk.tenure, read: chunk.read });
        }
      }
      this.#release(this.#queuedRecords);
      this.#o.onRound?.(
        round.map((p) => p.chunk),
        false,
      );
      const stale = round.every((p) => this.#o.generationOf(p.chunk) === undefined);
      for (const pending of failed)
        pending.reject(new ChunkNotCommittedError(`committing the round failed: ${(error as Error).message}`, stale && this.#o.generationOf(pending.chunk) === undefined, error));
      return false;
    }
    this.#o.onRound?.(
      round.map((p) => p.chunk),
      true,
    );
    for (const pending of round) pending.resolve();
    return true;
  }

  #release(records: number): void {
    this.#queuedRecords -= records;
    if (this.#queuedRecords >= this.#o.maxQueuedRecords) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
