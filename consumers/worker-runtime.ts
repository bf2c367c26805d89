import { ShutdownTimeoutError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { GroupBatch, GroupGeneration, GroupListener, KafkaRecord, TopicPartition, WorkerOutput } from '../kafka/index.ts';
import { ChunkNotCommittedError, Committer, type Chunk, type RoundLimits } from './committer.ts';
import type { WorkerMetrics } from './metrics.ts';
import type { Outcome, RecordProcessor } from './record-processor.ts';
import { withDeadline } from '../core/deadline.ts';

/**
 * A running worker: turns the batches its group consumer hands over into
 * chunks, and the chunks into commits. The Kafka clients come in through the
 * seam (`WorkerSeam`), so the unit tests drive it with a fake one.
 *
 * Records are handled in chunks of at most `chunkSize` records and
 * `chunkBytes` of outputs, each partition in order and `concurrency`
 * partitions at once (the consumer's). Chunks' outputs, dead letters and
 * offsets are then committed together by the Committer, many chunks of many
 * partitions per round (sized by `round`):
 * - exactly once: in one Kafka transaction of the instance's transactional
 *   producer, offsets fenced by the group generation (KIP-447); readers of the
 *   outputs that read committed see each output once.
 * - at least once: by an idempotent, acks=all producer, and only once the
 *   broker acknowledged them is the offset committed. A crash re-delivers at
 *   most the uncommitted chunks, whose outputs may then appear twice.
 */

export interface WorkerCounters {
  /** Input records handled (emitted or dead-lettered) and committed. */
  processed: number;
  /** Output records produced and committed. */
  emitted: number;
  deadLettered: number;
  /** Records retried in place, and chunks abandoned on a failure to be read again from the last commit. */
  retries: number;
}

/** What the runtime needs from the group consumer (kafka/group-consumer.ts's GroupConsumer). */
export interface WorkerConsumer {
  start(listener: GroupListener): Promise<void>;
  rewind(partitions: readonly TopicPartition[], delayMs?: number): void;
  /** The membership a chunk's offset commits with; undefined once the member stopped holding the partition (see GroupConsumer). */
  commitGeneration(partition: TopicPartition, tenure: number): GroupGeneration | undefined;
  /** Partitions of a topic (the output's, for the partitioner). */
  partitionCount(topic: string): Promise<number>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerSeam {
  consumer: WorkerConsumer;
  output: WorkerOutput & { init?(): Promise<void> };
}

export interface WorkerRuntimeOptions {
  name: string;
  seam: WorkerSeam;
  processor: Pick<RecordProcessor, 'process'>;
  chunkSize: number;
  chunkBytes: number;
  /** When a transaction (or an at-least-once offset commit) stops taking chunks and commits. */
  round: RoundLimits;
  shutdownTimeoutMs: number;
  metrics: WorkerMetrics;
  log: Logger;
}

/** A partition being worked on; `epoch` changes when what was handed over for it no longer counts (rewind, revocation). */
interface Lane {
  epoch: number;
  /** Aborted when the epoch moves on or the worker stops: a record in backoff gives up its wait. */
  ended: AbortController;
}

const newLane = (): Lane => ({ epoch: 0, ended: new AbortController() });

/** What was handed over for the lane so far no longer counts. */
function nextEpoch(lane: Lane): void {
  lane.epoch++;
  lane.ended.abort();
  lane.ended = new AbortController();
}

/** After a failed commit, the partition is read again after this pause. */
const REWIND_DELAY_MS = 500;

const laneKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class WorkerRuntime {
  readonly name: string;
  readonly counters: WorkerCounters = { processed: 0, emitted: 0, deadLettered: 0, retries: 0 };
  readonly #o: WorkerRuntimeOptions;
  readonly #committer: Committer;
  readonly #lanes = new Map<string, Lane>();
  readonly #labels: { worker: string };
  readonly #lagLabels = new Set<string>();
  #running = true;
  #stopping: Promise<void> | undefined;

  constructor(options: WorkerRuntimeOptions) {
    this.name = options.name;
    this.#o = options;
    this.#labels = { worker: options.name };
    this.#committer = new Committer({
      output: options.seam.output,
      generationOf: (chunk) => options.seam.consumer.commitGeneration(chunk, chunk.tenure),
      requestBytes: options.chunkBytes,
      sendsInFlight: options.seam.output.sendsInFlight,
      round: options.round,
      maxQueuedRecords: options.chunkSize * 4,
      log: options.log,
      onRound: (chunks, committed) => this.#counted(chunks, committed),
    });
  }

  /** Joins the group; batches start flowing. */
  async start(): Promise<void> {
    await this.#o.seam.consumer.start({
      batch: (batch) => this.handleBatch(batch),
      assigned: (partitions) => this.assigned(partitions),
      revoked: (partitions) => this.revoked(partitions),
    });
  }

  assigned(partitions: readonly TopicPartition[]): void {
    for (const { topic, partition } of partitions) {
      const lane = this.#lanes.get(laneKey(topic, partition));
      if (lane) nextEpoch(lane);
      else this.#lanes.set(laneKey(topic, partition), newLane());
    }
  }

  /** What was handed over for `partitions` no longer counts: stop handling it (its commits would be fenced anyway). */
  revoked(partitions: readonly TopicPartition[]): void {
    for (const { topic, partition } of partitions) {
      const key = laneKey(topic, partition);
      const lane = this.#lanes.get(key);
      if (lane) nextEpoch(lane);
      if (this.#lagLabels.delete(key)) this.#o.metrics.lag.remove({ ...this.#labels, topic, partition: String(partition) });
    }
  }

  /**
   * Handles one partition batch: its records in order, cut into chunks that
   * are submitted for commit as they fill. Returns once the last chunk is
   * queued, not committed: the partition's next batch is handled while the
   * committer works (its commits stay in order, see Committer).
   */
  async handleBatch(batch: GroupBatch): Promise<void> {
    const key = laneKey(batch.topic, batch.partition);
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = newLane();
      this.#lanes.set(key, lane);
    }
    const epoch = lane.epoch;
    const ended = lane.ended.signal;
    const current = () => this.#running && lane.epoch === epoch;
    let chunk: Chunk | undefined;
    let record: KafkaRecord | undefined;
    try {
      for (record of batch.records) {
        if (!current()) return;
        const outcome = await this.#o.processor.process(record, ended);
        // Stopped or revoked during a backoff: nothing of the chunk is committed, so all of it is read again by whoever owns the partition.
        if (!outcome || !current()) return;
        if (chunk && chunk.bytes + outcome.bytes > this.#o.chunkBytes) {
          await this.commit(chunk, lane, epoch);
          chunk = undefined;
        }
        chunk ??= this.#newChunk(batch, record, epoch);
        this.#add(chunk, record, outcome);
        if (chunk.count >= this.#o.chunkSize) {
          await this.commit(chunk, lane, epoch);
          chunk = undefined;
        }
      }
      if (chunk && current()) await this.commit(chunk, lane, epoch);
    } catch (error) {
      this.counters.retries++;
      this.#o.log.error(
        { err: error, topic: batch.topic, partition: batch.partition, offset: record === undefined ? undefined : String(record.offset) },
        'failure handling a record; the partition is read again from its last commit',
      );
      throw error;
    }
  }

  /** `epoch`: the lane's when the batch was handed over, the chunk's read (a failed commit moves the lane to a new read). */
  #newChunk(batch: GroupBatch, first: KafkaRecord, epoch: number): Chunk {
    return {
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: first.offset,
      lastOffset: first.offset,
      count: 0,
      records: [],
      outputs: 0,
      deadLetters: 0,
      bytes: 0,
      tenure: batch.tenure,
      read: epoch,
      leaderEpoch: batch.leaderEpoch,
      highWatermark: batch.highWatermark,
    };
  }

  #add(chunk: Chunk, record: KafkaRecord, outcome: Outcome): void {
    chunk.lastOffset = record.offset;
    chunk.count++;
    chunk.bytes += outcome.bytes;
    if (outcome.kind === 'emit') {
      for (const output of outcome.records) chunk.records.push(output);
      chunk.outputs += outcome.records.length;
    } else {
      chunk.records.push(outcome.record);
      chunk.deadLetters++;
    }
  }

  /**
   * Submits `chunk` and waits for room in the committer (not for the commit).
   * When its commit fails, the partition is read again from its committed
   * offset, unless the rebalance that made it stale already takes care of it.
   */
  async commit(chunk: Chunk, lane: Lane, epoch: number): Promise<void> {
    this.#committer.submit(chunk).catch((error: unknown) => {
      if (lane.epoch !== epoch) return;
      nextEpoch(lane);
      const stale = error instanceof ChunkNotCommittedError && error.stale;
      if (stale) return;
      this.counters.retries++;
      this.#o.log.error(
        { err: error, topic: chunk.topic, partition: chunk.partition, firstOffset: String(chunk.firstOffset), lastOffset: String(chunk.lastOffset) },
        'committing a chunk failed; the partition is read again from its last commit',
      );
      this.#o.seam.consumer.rewind([{ topic: chunk.topic, partition: chunk.partition }], REWIND_DELAY_MS);
    });
    await this.#committer.room();
  }

  #counted(chunks: readonly Chunk[], committed: boolean): void {
    this.#o.metrics.transactions.inc({ ...this.#labels, outcome: committed ? 'committed' : 'aborted' });
    if (!committed) return;
    let inputs = 0;
    let outputs = 0;
    for (const chunk of chunks) {
      inputs += chunk.count;
      outputs += chunk.outputs;
      this.counters.processed += chunk.count;
      this.counters.emitted += chunk.outputs;
      this.counters.deadLettered += chunk.deadLetters;
      const key = laneKey(chunk.topic, chunk.partition);
      this.#lagLabels.add(key);
      const lag = chunk.highWatermark - (chunk.lastOffset + 1n);
      this.#o.metrics.lag.set({ ...this.#labels, topic: chunk.topic, partition: String(chunk.partition) }, lag > 0n ? Number(lag) : 0);
    }
    this.#o.metrics.eventsIn.inc(this.#labels, inputs);
    this.#o.metrics.eventsOut.inc(this.#labels, outputs);
  }

  /** Stops fetching, commits what was handled, leaves the group. Idempotent; bounded by shutdownTimeoutMs. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const startedAt = Date.now();
    this.#o.log.info('worker stopping');
    try {
      await withDeadline(this.#finish(), this.#o.shutdownTimeoutMs, () => {
        throw new ShutdownTimeoutError(`worker ${this.name}`, this.#o.shutdownTimeoutMs);
      });
    } catch (error) {
      this.#o.log.error({ err: error, counters: { ...this.counters } }, 'worker did not stop cleanly');
      // Past the budget the process is about to exit; still try not to leave connections open in-process.
      if (error instanceof ShutdownTimeoutError) this.#close().catch((cause: unknown) => this.#o.log.warn({ err: cause }, 'closing the clients after the shutdown timeout failed'));
      throw error;
    }
    this.#o.log.info({ counters: { ...this.counters }, durationMs: Date.now() - startedAt }, 'worker stopped');
  }

  /**
   * The batch being handled ends at its current record (a record in backoff is
   * left to the next owner); what was handled is committed while the member
   * still holds its generation; then it leaves the group.
   */
  async #finish(): Promise<void> {
    this.#running = false;
    for (const lane of this.#lanes.values()) lane.ended.abort();
    await this.#o.seam.consumer.stop();
    await this.#committer.drain();
    await this.#close();
  }

  async #close(): Promise<void> {
    await this.#o.seam.consumer.close();
    await this.#o.seam.output.close();
  }
}
