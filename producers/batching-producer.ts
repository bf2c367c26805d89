import type { Message, ProducerBatch, RecordMetadata } from 'kafkajs';
import { BrokerUnavailableError, OverloadedError, ShuttingDownError, SluiceError, describeCause, isRetryable } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { partitionForKey } from './partitioner.ts';

/**
 * Micro-batching in front of one shared producer. Concurrent requests put their
 * records on one queue; a flush sends up to `batchMaxRecords` of them in a
 * single produce call, with at most one call in flight, so a burst of requests
 * costs a handful of produce requests instead of one each.
 *
 * Partitions are chosen here, not by kafkajs, so every record's offset is known
 * from the send result alone: offset = the partition's base offset + the
 * record's position among that partition's records in that send.
 */

export interface OutgoingRecord {
  topic: string;
  /** null: no key; the record goes round-robin. */
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

export interface RecordAck {
  topic: string;
  partition: number;
  /** A string, as Kafka tools print it: offsets are 64-bit. */
  offset: string;
}

export type SendBatch = (batch: ProducerBatch) => Promise<RecordMetadata[]>;

export interface BatchObserver {
  batchSent?(records: number, durationMs: number): void;
  batchFailed?(records: number, error: unknown): void;
}

export interface BatchingProducerOptions {
  send: SendBatch;
  /** Partition count of a topic; may fetch metadata, and may throw when Kafka is unreachable. */
  partitionCount: (topic: string) => Promise<number>;
  /** Told when a send fails, e.g. to refresh metadata that may be stale. */
  onSendError?: (error: unknown, topics: string[]) => void;
  lingerMs: number;
  batchMaxRecords: number;
  maxQueuedRecords: number;
  /** Longest a record waits for its acknowledgement before its request is answered 503. */
  timeoutMs: number;
  logger: Logger;
  observer?: BatchObserver;
}

interface Ticket {
  readonly acks: (RecordAck | undefined)[];
  remaining: number;
  settled: boolean;
  readonly resolve: (acks: RecordAck[]) => void;
  readonly reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Pending {
  readonly ticket: Ticket;
  readonly index: number;
  readonly record: OutgoingRecord;
}

export interface BatchingStats {
  batchesSent: number;
  recordsSent: number;
  batchesFailed: number;
  largestBatch: number;
  queued: number;
  sending: boolean;
}

export class BatchingProducer {
  readonly #options: BatchingProducerOptions;
  #queue: Pending[] = [];
  #sending = false;
  #timer: { readonly immediate: boolean; cancel(): void } | undefined;
  #closing = false;
  #drained: (() => void) | undefined;
  readonly #roundRobin = new Map<string, number>();
  readonly #stats = { batchesSent: 0, recordsSent: 0, batchesFailed: 0, largestBatch: 0 };

  constructor(options: BatchingProducerOptions) {
    this.#options = options;
  }

  stats(): BatchingStats {
    return { ...this.#stats, queued: this.#queue.length, sending: this.#sending };
  }

  /**
   * Queues one request's records; resolves with their acknowledgements in the
   * same order once Kafka has acknowledged all of them, or rejects with the
   * first failure (or the deadline) so the request can be answered at once.
   */
  produce(records: OutgoingRecord[]): Promise<RecordAck[]> {
    if (this.#closing) return Promise.reject(new ShuttingDownError());
    const { maxQueuedRecords, timeoutMs } = this.#options;
    if (this.#queue.length + records.length > maxQueuedRecords) {
      return Promise.reject(new OverloadedError(`${this.#queue.length} records are already waiting for Kafka (limit ${maxQueuedRecords}); retry shortly`));
    }
    return new Promise<RecordAck[]>((resolve, reject) => {
      const ticket: Ticket = { acks: new Array(records.length), remaining: records.length, settled: false, resolve, reject, timer: undefined };
      ticket.timer = setTimeout(() => {
        this.#fail(ticket, new BrokerUnavailableError(`Kafka did not acknowledge within ${timeoutMs} ms`));
      }, timeoutMs);
      records.forEach((record, index) => this.#queue.push({ ticket, index, record }));
      this.#schedule();
    });
  }

  /** Sends what is queued and waits for the sends in flight; later calls to produce are refused. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#queue.length === 0 && !this.#sending) return;
    const drained = new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
    this.#flushSoon(true);
    await drained;
  }

  #schedule(): void {
    if (this.#sending) return;
    if (this.#queue.length >= this.#options.batchMaxRecords) this.#flushSoon(true);
    else this.#flushSoon(false);
  }

  /**
   * When idle, the first record waits lingerMs so a burst of requests goes out
   * together. "Now" (and a linger of 0) means the next turn of the event loop,
   * not a 0 ms timer: Node runs those after at least 1 ms, which added a
   * millisecond of idle time between every two sends under load.
   */
  #flushSoon(now: boolean): void {
    if (this.#sending || this.#queue.length === 0) return;
    if (this.#timer !== undefined) {
      if (!now || this.#timer.immediate) return;
      this.#timer.cancel();
    }
    const lingerMs = now ? 0 : this.#options.lingerMs;
    if (lingerMs === 0) {
      const handle = setImmediate(() => void this.#flush());
      this.#timer = { immediate: true, cancel: () => clearImmediate(handle) };
    } else {
      const handle = setTimeout(() => void this.#flush(), lingerMs);
      this.#timer = { immediate: false, cancel: () => clearTimeout(handle) };
    }
  }

  #take(): Pending[] {
    const max = this.#options.batchMaxRecords;
    const batch: Pending[] = [];
    let i = 0;
    for (; i < this.#queue.length && batch.length < max; i++) {
      const pending = this.#queue[i]!;
      // A request already answered (deadline or a sibling record failed) must not
      // be written after the caller was told it failed: the caller will retry it.
      if (!pending.ticket.settled) batch.push(pending);
    }
    this.#queue = this.#queue.slice(i);
    return batch;
  }

  async #flush(): Promise<void> {
    this.#timer = undefined;
    if (this.#sending) return;
    const batch = this.#take();
    if (batch.length === 0) {
      this.#finishIfDrained();
      return;
    }
    this.#sending = true;
    const topics = [...new Set(batch.map((p) => p.record.topic))];
    const started = performance.now();
    try {
      await this.#send(batch, topics);
      this.#stats.batchesSent += 1;
      this.#stats.recordsSent += batch.length;
      this.#stats.largestBatch = Math.max(this.#stats.largestBatch, batch.length);
      this.#options.observer?.batchSent?.(batch.length, performance.now() - started);
    } catch (error) {
      this.#stats.batchesFailed += 1;
      this.#options.observer?.batchFailed?.(batch.length, error);
      const failure = toProduceError(error, batch.length, topics);
      this.#options.logger.warn({ err: error, topics, count: batch.length, code: failure.code }, 'produce failed');
      this.#options.onSendError?.(error, topics);
      for (const pending of batch) this.#fail(pending.ticket, failure);
    } finally {
      this.#sending = false;
      if (this.#closing) this.#flushSoon(true);
      else this.#flushSoon(this.#queue.length > 0);
      this.#finishIfDrained();
    }
  }

  async #send(batch: Pending[], topics: string[]): Promise<void> {
    const counts = new Map<string, number>();
    for (const topic of topics) counts.set(topic, await this.#options.partitionCount(topic));

    const messagesByTopic = new Map<string, Message[]>();
    // Position of each record among its partition's records in this send.
    const positions: { topic: string; partition: number; position: number }[] = [];
    const perPartition = new Map<string, number>();
    for (const { record } of batch) {
      const partitions = counts.get(record.topic)!;
      const partition = record.key === null ? this.#nextRoundRobin(record.topic, partitions) : partitionForKey(record.key, partitions);
      const tp = `${record.topic}\u0000${partition}`;
      const position = perPartition.get(tp) ?? 0;
      perPartition.set(tp, position + 1);
      positions.push({ topic: record.topic, partition, position });
      let messages = messagesByTopic.get(record.topic);
      if (!messages) {
        messages = [];
        messagesByTopic.set(record.topic, messages);
      }
      messages.push({ key: record.key, value: record.value, partition, headers: record.headers });
    }

    // One entry per topic: kafkajs keys its per-send bookkeeping by topic name,
    // so a topic listed twice in one send would lose the first entry's records.
    const metadata = await this.#options.send({
      topicMessages: [...messagesByTopic].map(([topic, messages]) => ({ topic, messages })),
    });

    const baseOffsets = new Map<string, bigint>();
    const failed = new Map<string, number>();
    for (const m of metadata) {
      const tp = `${m.topicName}\u0000${m.partition}`;
      if (m.errorCode !== 0) failed.set(tp, m.errorCode);
      else if (m.baseOffset !== undefined) baseOffsets.set(tp, BigInt(m.baseOffset));
    }
    let late = 0;
    batch.forEach((pending, i) => {
      const { topic, partition, position } = positions[i]!;
      const tp = `${topic}\u0000${partition}`;
      const base = baseOffsets.get(tp);
      if (base === undefined) {
        const code = failed.get(tp);
        this.#fail(pending.ticket, new BrokerUnavailableError(`Kafka answered ${topic}[${partition}] with ${code === undefined ? 'no offset' : `error code ${code}`}`));
        return;
      }
      if (pending.ticket.settled) late += 1;
      this.#ack(pending, { topic, partition, offset: (base + BigInt(position)).toString() });
    });
    if (late > 0) {
      // Written, but the caller already got 503 (deadline) and may send them again.
      this.#options.logger.warn({ topics, count: late }, 'records acknowledged after their requests timed out');
    }
  }

  #nextRoundRobin(topic: string, partitions: number): number {
    const next = (this.#roundRobin.get(topic) ?? -1) + 1;
    this.#roundRobin.set(topic, next);
    return next % partitions;
  }

  #ack(pending: Pending, ack: RecordAck): void {
    const { ticket } = pending;
    if (ticket.settled) return;
    ticket.acks[pending.index] = ack;
    ticket.remaining -= 1;
    if (ticket.remaining === 0) {
      ticket.settled = true;
      clearTimeout(ticket.timer);
      ticket.resolve(ticket.acks as RecordAck[]);
    }
  }

  #fail(ticket: Ticket, error: unknown): void {
    if (ticket.settled) return;
    ticket.settled = true;
    clearTimeout(ticket.timer);
    ticket.reject(error);
  }

  #finishIfDrained(): void {
    if (this.#closing && !this.#sending && this.#queue.length === 0 && this.#drained) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}

/** What a failed send means for the callers: 503 when trying again can help, 500 otherwise. */
export function toProduceError(error: unknown, count: number, topics: string[]): SluiceError {
  if (error instanceof SluiceError) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  const message = `Kafka did not accept ${count} record(s) for ${topics.join(', ')}: ${describeCause(error)}`;
  if (isRetryable(error) || isRetryable(cause)) return new BrokerUnavailableError(message, error);
  return new SluiceError('SLUICE_PRODUCE_FAILED', message, { statusCode: 500, cause: error });
}
