import { BrokerUnavailableError, OverloadedError, ShuttingDownError, SluiceError, describeCause, isRetryable } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { errorTrail, type OutgoingRecord, type RecordMetadata } from '../kafka/index.ts';

/**
 * Micro-batching in front of one shared producer. Concurrent requests put their
 * records on one queue; a flush sends up to `batchMaxRecords` of them in a
 * single produce call, so a burst of requests costs a handful of produce
 * requests instead of one each. Up to `maxInFlight` sends are outstanding at
 * once (5 is Kafka's limit for an idempotent producer to keep order): sends are
 * handed to the producer in queue order and the broker keeps each partition in
 * that order, so records of one key stay in the order they were accepted.
 *
 * The seam answers every record with its own partition and offset.
 */

export type { OutgoingRecord };

export interface RecordAck {
  topic: string;
  partition: number;
  /** A string, as Kafka tools print it: offsets are 64-bit. */
  offset: string;
}

/** Writes the records in one call; one RecordMetadata per record, same order. */
export type SendRecords = (records: OutgoingRecord[]) => Promise<RecordMetadata[]>;

export interface BatchObserver {
  batchSent?(records: number, durationMs: number): void;
  batchFailed?(records: number, error: unknown): void;
}

export interface BatchingProducerOptions {
  send: SendRecords;
  lingerMs: number;
  /** Sends outstanding at once; default 5. */
  maxInFlight?: number;
  batchMaxRecords: number;
  maxQueuedRecords: number;
  /** Longest a record waits for its acknowledgement before its request is answered 503. */
  timeoutMs: number;
  logger: Logger;
  observer?: BatchObserver;
}

/**
 * The 503 at the deadline, saying what became of the request's records: those not sent yet never will be (a retry
 * writes them once); those sent may be written, like any produce that timed out, so a retry without an
 * Idempotency-Key may write them twice.
 */
export function deadlineMessage(timeoutMs: number, sent: number, records: number): string {
  const waited = `Kafka did not acknowledge within ${timeoutMs} ms`;
  if (sent === 0) return `${waited}; nothing was sent, and nothing will be: retry`;
  const which = records === 1 ? 'the record was sent and' : `${sent} of the ${records} records were sent and`;
  return `${waited}; ${which} may be written: retry with an Idempotency-Key to have it written once`;
}

interface Ticket {
  readonly acks: (RecordAck | undefined)[];
  remaining: number;
  settled: boolean;
  readonly resolve: (acks: RecordAck[]) => void;
  readonly reject: (error: unknown) => void;
  /** When the request is answered 503 if Kafka has not acknowledged it (performance.now() ms). */
  readonly deadline: number;
  /** Its records taken into a send so far: those may be written after a 503 at the deadline; the others never are. */
  sent: number;
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
  inFlight: number;
}

export class BatchingProducer {
  readonly #options: BatchingProducerOptions;
  readonly #maxInFlight: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  /** Records in the sends outstanding: with the queue, the backlog a new request waits behind. */
  #inFlightRecords = 0;
  #idleCount = 0;
  #timer: { readonly immediate: boolean; cancel(): void } | undefined;
  #closing = false;
  #drained: (() => void) | undefined;
  /**
   * Tickets in the order they were made, so in deadline order (every ticket waits the same timeoutMs), from
   * #oldest on: one timer for the oldest unsettled ticket's deadline instead of a timer per request (a
   * setTimeout and clearTimeout cost each request ~0.5 µs on the loaded bench machine).
   */
  #byDeadline: Ticket[] = [];
  #oldest = 0;
  #deadlineTimer: NodeJS.Timeout | undefined;
  readonly #stats = { batchesSent: 0, recordsSent: 0, batchesFailed: 0, largestBatch: 0 };

  constructor(options: BatchingProducerOptions) {
    this.#options = options;
    this.#maxInFlight = options.maxInFlight ?? 5;
  }

  /** Records queued and in flight (admission.ts: the hot path reads it for every produce request). */
  get backlog(): number {
    return this.#queue.length + this.#inFlightRecords;
  }

  /** Records Kafka acknowledged so far. */
  get acknowledgedRecords(): number {
    return this.#stats.recordsSent;
  }

  /**
   * How long the oldest request still waiting for Kafka has waited (ms; 0 when none waits): admission.ts refuses by it
   * (the queue's measured wait), and tells by it a queue that drains within the budget (its own limit keeps the sends
   * small) from one that does not.
   */
  get oldestWaitMs(): number {
    // Admission reads it for every produce request: the answered tickets at the front are dropped once, not walked each time.
    this.#dropSettled();
    const oldest = this.#byDeadline[this.#oldest];
    return oldest === undefined ? 0 : Math.max(0, performance.now() - (oldest.deadline - this.#options.timeoutMs));
  }

  /** How often the backlog fell to zero so far: a drain rate measured across it shows the arrivals, not Kafka. */
  get idleCount(): number {
    return this.#idleCount;
  }

  stats(): BatchingStats {
    return { ...this.#stats, queued: this.#queue.length, inFlight: this.#inFlight };
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
      const ticket: Ticket = { acks: new Array(records.length), remaining: records.length, settled: false, resolve, reject, deadline: performance.now() + timeoutMs, sent: 0 };
      this.#watchDeadline(ticket);
      records.forEach((record, index) => this.#queue.push({ ticket, index, record }));
      this.#flushSoon(this.#queue.length >= this.#options.batchMaxRecords);
    });
  }

  #watchDeadline(ticket: Ticket): void {
    this.#dropSettled();
    this.#byDeadline.push(ticket);
    if (this.#deadlineTimer === undefined) this.#armDeadline();
  }

  /** Forgets the answered tickets at the front (answers come roughly in order, so the list stays short). */
  #dropSettled(): void {
    const list = this.#byDeadline;
    while (this.#oldest < list.length && list[this.#oldest]!.settled) this.#oldest++;
    if (this.#oldest === list.length) {
      list.length = 0;
      this.#oldest = 0;
    } else if (this.#oldest >= 1024 && this.#oldest * 2 >= list.length) {
      this.#byDeadline = list.slice(this.#oldest);
      this.#oldest = 0;
    }
  }

  #armDeadline(): void {
    this.#dropSettled();
    const next = this.#byDeadline[this.#oldest];
    // Unref'd: the requests waiting hold the process open by their sockets; a deadline alone must not (close clears it).
    this.#deadlineTimer = next === undefined ? undefined : setTimeout(() => this.#expire(), Math.max(0, next.deadline - performance.now())).unref();
  }

  /** Answers 503 to every request past its deadline, then waits for the next one's. */
  #expire(): void {
    const now = performance.now();
    const list = this.#byDeadline;
    while (this.#oldest < list.length && list[this.#oldest]!.deadline <= now) {
      const ticket = list[this.#oldest]!;
      this.#fail(ticket, new BrokerUnavailableError(deadlineMessage(this.#options.timeoutMs, ticket.sent, ticket.acks.length)));
      this.#oldest++;
    }
    this.#armDeadline();
  }

  /** Sends what is queued and waits for the sends in flight; later calls to produce are refused. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#queue.length > 0 || this.#inFlight > 0) {
      const drained = new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
      this.#flushSoon(true);
      await drained;
    }
    // Every request is answered now: no deadline left to watch.
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  /**
   * When idle, the first record waits lingerMs so a burst of requests goes out
   * together. "Now" (and a linger of 0) means the next turn of the event loop,
   * not a 0 ms timer: Node runs those after at least 1 ms, which added a
   * millisecond of idle time between every two sends under load. With every
   * send slot taken, records wait for the first answer and go out together.
   */
  #flushSoon(now: boolean): void {
    if (this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    if (this.#timer !== undefined) {
      if (!now || this.#timer.immediate) return;
      this.#timer.cancel();
    }
    const lingerMs = now || this.#inFlight > 0 ? 0 : this.#options.lingerMs;
    if (lingerMs === 0) {
      const handle = setImmediate(() => this.#flush());
      this.#timer = { immediate: true, cancel: () => clearImmediate(handle) };
    } else {
      const handle = setTimeout(() => this.#flush(), lingerMs);
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
      if (!pending.ticket.settled) {
        batch.push(pending);
        pending.ticket.sent += 1;
      }
    }
    this.#queue = this.#queue.slice(i);
    return batch;
  }

  /** Starts sends while slots are free and records are queued. */
  #flush(): void {
    this.#timer = undefined;
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#take();
      if (batch.length === 0) {
        // Every record queued had been answered already (deadline): dropped, and nothing is left to send.
        if (this.backlog === 0) this.#idleCount += 1;
        break;
      }
      this.#inFlight += 1;
      this.#inFlightRecords += batch.length;
      void this.#sendBatch(batch).finally(() => {
        this.#inFlight -= 1;
        this.#inFlightRecords -= batch.length;
        if (this.backlog === 0) this.#idleCount += 1;
        this.#flushSoon(this.#closing || this.#queue.length > 0);
        this.#finishIfDrained();
      });
      // Under load, let more requests arrive before filling the next slot.
      if (this.#queue.length < this.#options.batchMaxRecords) break;
    }
    this.#finishIfDrained();
  }

  async #sendBatch(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const records = batch.map((p) => p.record);
    try {
      const metadata = await this.#options.send(records);
      this.#stats.batchesSent += 1;
      this.#stats.recordsSent += batch.length;
      this.#stats.largestBatch = Math.max(this.#stats.largestBatch, batch.length);
      this.#options.observer?.batchSent?.(batch.length, performance.now() - started);
      this.#acknowledge(batch, metadata);
    } catch (error) {
      const topics = [...new Set(records.map((r) => r.topic))];
      this.#stats.batchesFailed += 1;
      this.#options.observer?.batchFailed?.(batch.length, error);
      const failure = toProduceError(error, batch.length, topics);
      // The causes say whether the client retried (and what each attempt got) or gave up at once.
      this.#options.logger.warn({ err: error, causes: errorTrail(error), topics, count: batch.length, code: failure.code }, 'produce failed');
      for (const pending of batch) this.#fail(pending.ticket, failure);
    }
  }

  #acknowledge(batch: Pending[], metadata: RecordMetadata[]): void {
    let late = 0;
    batch.forEach((pending, i) => {
      const m = metadata[i];
      if (m === undefined || m.offset < 0n) {
        this.#fail(pending.ticket, new BrokerUnavailableError(`Kafka did not answer with an offset for ${pending.record.topic}${m ? `[${m.partition}]` : ''}`));
        return;
      }
      if (pending.ticket.settled) late += 1;
      this.#ack(pending, { topic: m.topic, partition: m.partition, offset: m.offset.toString() });
    });
    if (late > 0) {
      // Written, but the caller already got 503 (deadline) and may send them again.
      this.#options.logger.warn({ topics: [...new Set(batch.map((p) => p.record.topic))], count: late }, 'records acknowledged after their requests timed out');
    }
  }

  #ack(pending: Pending, ack: RecordAck): void {
    const { ticket } = pending;
    if (ticket.settled) return;
    ticket.acks[pending.index] = ack;
    ticket.remaining -= 1;
    if (ticket.remaining === 0) {
      ticket.settled = true;
      ticket.resolve(ticket.acks as RecordAck[]);
    }
  }

  #fail(ticket: Ticket, error: unknown): void {
    if (ticket.settled) return;
    ticket.settled = true;
    ticket.reject(error);
  }

  #finishIfDrained(): void {
    if (this.#closing && this.#inFlight === 0 && this.#queue.length === 0 && this.#drained) {
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
