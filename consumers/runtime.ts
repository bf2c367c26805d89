import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type ICustomPartitioner, type KafkaMessage, type Message, type Producer, type TopicMessages } from 'kafkajs';
import type { SluiceConfig } from '../core/config.ts';
import { describeCause, isRetryable, OutputTooLargeError, ShutdownTimeoutError, TransactionAbortedError, WorkerConfigError } from '../core/errors.ts';
import { createKafka } from '../core/kafka.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { createCodecEncoder, decodeFramed, type EventEncoder } from '../core/serde.ts';
import { schemaTypeOf, topicByName, valueCodec, type Topology, type ValueSchema, type WorkerSpec } from '../topology/model.ts';
import { normalizeOutputs, type AnyHandler, type Handler, type HandlerContext } from './handler.ts';
import { CORRELATION_HEADER, correlationIdOf, deadLetterMessage, errorClassName, errorCodeOf, headersToStrings, SOURCE_HEADER } from './headers.ts';
import { workerMetrics, type WorkerMetrics } from './metrics.ts';
import { backoffMs, waitWithHeartbeats, type RetryPolicy } from './retry.ts';
import { partitionForKey } from '../producers/partitioner.ts';
import { PartitionTransactions } from './transactions.ts';

/**
 * The stream-worker runtime: consumes a topic in a consumer group, decodes each
 * record to the worker's reader schema, runs the handler, and produces its
 * outputs, exactly once or at least once (the worker's `delivery`).
 *
 * Records are handled in chunks of at most `workerBatchSize` records and
 * `workerBatchBytes` of outputs, each partition in order and
 * `workerConcurrency` partitions at once. A chunk's outputs and dead letters are
 * then produced together with the chunk's offset:
 * - exactly once: in one Kafka transaction with the offsets (sendOffsets), by the
 *   partition's transactional producer (see transactions.ts for the fencing);
 *   readers of the outputs that read committed see each output once.
 * - at least once: by idempotent, acks=all producers (an input partition always
 *   uses the same one), and only once the broker acknowledged them is the offset
 *   committed. A crash re-delivers at most the
 *   uncommitted chunks, whose outputs may then appear twice.
 *
 * Backpressure: kafkajs fetches a partition again only after eachBatch returned,
 * so while producing is slow, fetching waits, and memory holds at most one fetch
 * per partition being processed.
 */

export interface WorkerCounters {
  /** Input records handled (emitted or dead-lettered) and committed. */
  processed: number;
  /** Output records produced and acknowledged. */
  emitted: number;
  deadLettered: number;
  /** Records retried in place, and chunks abandoned on a failure to be re-delivered from the last commit. */
  retries: number;
}

export interface RunningWorker {
  readonly name: string;
  readonly counters: Readonly<WorkerCounters>;
  /** Stops fetching, finishes and commits the chunk in flight, leaves the group. Idempotent. */
  stop(): Promise<void>;
}

export interface StartWorkerOptions {
  config: SluiceConfig;
  logger: Logger;
  spec: WorkerSpec;
  topology: Topology;
  registry: RegistryClient;
  /** The handler to run; loaded from `spec.handler` (its default export) when omitted. */
  handler?: AnyHandler;
  /** Where to count; the process-wide worker metrics when omitted. */
  metrics?: WorkerMetrics;
}

function valueSchemaOf(spec: WorkerSpec, topology: Topology, topic: string, role: string): ValueSchema {
  const valueSchema = topicByName(topology, topic)?.valueSchema;
  if (!valueSchema) throw new WorkerConfigError(spec.name, `${role} topic "${topic}" has no valueSchema in ${topology.file}`);
  return valueSchema;
}

export async function loadHandler(spec: WorkerSpec): Promise<AnyHandler> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(spec.handler).href)) as { default?: unknown };
  } catch (error) {
    throw new WorkerConfigError(spec.name, `cannot load handler module ${spec.handler}: ${describeCause(error)}`);
  }
  if (typeof module.default !== 'function') {
    throw new WorkerConfigError(spec.name, `handler module ${spec.handler} has no default export function (use \`export default defineWorker(...)\`)`);
  }
  return module.default as AnyHandler;
}

/**
 * The context handed to the handler. Its logger is created on first use: most
 * records never log, and a child logger per record is measurable at high rates.
 */
class RecordContext implements HandlerContext {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly timestamp: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly correlationId: string;
  readonly #parent: Logger;
  #log: Logger | undefined;

  constructor(parent: Logger, topic: string, partition: number, message: KafkaMessage, headers: Record<string, string>, correlationId: string) {
    this.topic = topic;
    this.partition = partition;
    this.offset = message.offset;
    this.key = message.key === null ? null : message.key.toString('utf8');
    this.timestamp = Number(message.timestamp);
    this.headers = headers;
    this.correlationId = correlationId;
    this.#parent = parent;
  }

  get log(): Logger {
    this.#log ??= this.#parent.child({
      topic: this.topic,
      partition: this.partition,
      offset: this.offset,
      key: this.key,
      correlationId: this.correlationId,
    });
    return this.#log;
  }
}

/** `bytes`: what the outputs take in a produce request, counted against workerBatchBytes. */
type Outcome = { kind: 'emit'; messages: Message[]; bytes: number } | { kind: 'dead'; message: Message; bytes: number };

/** Per-record framing in a record batch (length, attributes, deltas, varints), rounded up. */
const RECORD_OVERHEAD_BYTES = 24;

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** An upper estimate of what `message` adds to a produce request. */
export function messageBytes(message: Message): number {
  let bytes = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  const headers = message.headers;
  if (headers) {
    for (const name in headers) {
      const value = headers[name];
      bytes += RECORD_OVERHEAD_BYTES / 4 + Buffer.byteLength(name);
      if (Array.isArray(value)) for (const item of value) bytes += byteLength(item);
      else bytes += byteLength(value);
    }
  }
  return bytes;
}

/**
 * Outputs carry the partition the runtime computed (the Java client's, see
 * outputPartition); kafkajs's own partitioner computes murmur2 with Long math
 * and filters the partition list for every record. Only records without one
 * (dead letters) go through it.
 */
export const explicitPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => args.message.partition ?? fallback(args);
};

/** Most at-least-once producers per worker (each holds its own broker connections); fewer when workerConcurrency is lower. */
const ALO_PRODUCERS = 8;

/** How long a fetched output partition count is trusted before it is fetched again (in the background). */
const PARTITION_COUNT_MAX_AGE_MS = 60_000;

/** The records of one partition produced (and committed) together, in offset order. */
interface Chunk {
  first: KafkaMessage;
  last: KafkaMessage;
  count: number;
  outputs: Message[];
  deadLetters: Message[];
  bytes: number;
}

export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { config, spec, topology, registry } = options;
  const log = options.logger.child({ worker: spec.name, groupId: spec.groupId });

  const inputSchema = valueSchemaOf(spec, topology, spec.input, 'input');
  const outputSchema = valueSchemaOf(spec, topology, spec.output, 'output');
  const inputCodec = valueCodec(inputSchema);
  // Avro records are resolved to the worker's reader schema (JSON Schema and Protobuf ones are read as written).
  // The registry client caches decoders by (writer id, reader key); the hash keeps
  // two workers with different reader schemas for one subject apart.
  const reader = inputCodec.schemaType === 'AVRO' ? { types: inputCodec.types, key: `${inputSchema.subject}#${createHash('sha256').update(inputSchema.text).digest('hex').slice(0, 16)}` } : undefined;
  const handler = (options.handler ?? (await loadHandler(spec))) as Handler<unknown, unknown>;
  // Idempotent: registering the schema already registered returns its id.
  const outputId = await registry.register(outputSchema.subject, outputSchema.text, { schemaType: schemaTypeOf(outputSchema) });
  const encoder: EventEncoder = createCodecEncoder(outputSchema.subject, outputId, valueCodec(outputSchema));

  const counters: WorkerCounters = { processed: 0, emitted: 0, deadLettered: 0, retries: 0 };
  const chunkSize = config.workerBatchSize;
  const chunkBytes = config.workerBatchBytes;

  const metrics = options.metrics ?? workerMetrics();
  const labels = { worker: spec.name };
  const retryPolicy: RetryPolicy = { maxAttempts: config.workerMaxAttempts, baseMs: config.workerRetryBaseMs, maxMs: config.workerRetryMaxMs };

  const kafka = createKafka(config, log, `worker-${spec.name}`);
  // A short fetch wait bounds how long stop() waits for an idle long-poll to return
  // (kafkajs's 5 s default dominated shutdown); an idle worker polls once a second.
  // Inputs are read committed (kafkajs's default, stated here because exactly-once depends on it).
  const consumer: Consumer = kafka.consumer({
    groupId: spec.groupId,
    maxWaitTimeInMs: 1000,
    readUncommitted: false,
    sessionTimeout: config.workerSessionTimeoutMs,
    heartbeatInterval: Math.min(3000, Math.floor(config.workerSessionTimeoutMs / 3)),
  });
  const exactlyOnce = spec.delivery === 'exactly-once';
  const admin: Admin = kafka.admin();
  const transactions = exactlyOnce ? new PartitionTransactions({ kafka, admin, groupId: spec.groupId, log, createPartitioner: explicitPartitioner }) : undefined;
  // At least once: unbounded retries are what kafkajs requires to keep idempotence; a broker
  // outage stalls the worker (and shutdown is bounded by shutdownTimeoutMs).
  // Several producers: an idempotent kafkajs producer sends one request at a time per
  // broker (a lock per broker), so with one producer the partitions' sends queue behind
  // each other. An input partition always uses the same producer, which keeps its order.
  const producers: Producer[] = exactlyOnce
    ? []
    : Array.from({ length: Math.min(config.workerConcurrency, ALO_PRODUCERS) }, () =>
        kafka.producer({ idempotent: true, retry: { retries: Number.MAX_SAFE_INTEGER }, createPartitioner: explicitPartitioner }),
      );
  const disconnectProducers = () => Promise.all(producers.map((p) => p.disconnect()));

  let outputPartitions = 0;
  let partitionsFetchedAt = 0;
  let partitionsRefresh: Promise<void> | undefined;
  let unkeyedCounter = Math.floor(Math.random() * 0x7fffffff);
  async function fetchOutputPartitions(): Promise<void> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [spec.output] });
    const count = topics.find((t) => t.name === spec.output)?.partitions.length ?? 0;
    if (count === 0) throw new WorkerConfigError(spec.name, `output topic "${spec.output}" has no partitions in the broker's metadata`);
    if (outputPartitions !== 0 && count !== outputPartitions) log.info({ output: spec.output, from: outputPartitions, to: count }, 'output topic partition count changed');
    outputPartitions = count;
    partitionsFetchedAt = Date.now();
  }
  /** Re-reads the output partition count once at a time; a failure keeps the count known and is logged (the next error or age check tries again). */
  function refreshOutputPartitions(): Promise<void> {
    partitionsRefresh ??= fetchOutputPartitions()
      .catch((error: unknown) => log.warn({ err: error, output: spec.output }, 'refreshing the output topic partition count failed; keeping the last one'))
      .finally(() => {
        partitionsRefresh = undefined;
      });
    return partitionsRefresh;
  }
  /** Where Kafka's default partitioner puts `key`: murmur2 for keyed records, round robin for unkeyed ones. */
  function outputPartition(key: Buffer | string | null | undefined): number {
    if (Date.now() - partitionsFetchedAt > PARTITION_COUNT_MAX_AGE_MS) void refreshOutputPartitions();
    if (key === null || key === undefined) return (unkeyedCounter = (unkeyedCounter + 1) & 0x7fffffff) % outputPartitions;
    return partitionForKey(key, outputPartitions);
  }
  const lagLabels = new Set<string>();

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    log.info({ memberId: payload.memberId, isLeader: payload.isLeader, assignment: payload.memberAssignment, durationMs: payload.duration }, 'joined the consumer group; partitions assigned');
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
      for (const partition of partitions) assigned.add(PartitionTransactions.assignmentKey(topic, partition));
    }
    for (const k of lagLabels) {
      if (assigned.has(k)) continue;
      const [topic = '', partition = ''] = k.split('\u0000');
      metrics.lag.remove({ ...labels, topic, partition });
      lagLabels.delete(k);
    }
    transactions?.reassigned(assigned).catch((error: unknown) => log.warn({ err: error }, 'closing producers of partitions no longer assigned failed'));
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    log.error({ err: payload.error, restart: payload.restart }, payload.restart ? 'consumer crashed; kafkajs restarts it' : 'consumer crashed and will not restart');
  });

  function deadLetter(topic: string, partition: number, message: KafkaMessage, correlationId: string, error: unknown, attempts: number): Outcome {
    metrics.deadLetters.inc(labels);
    log.warn(
      {
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8') ?? null,
        correlationId,
        errorClass: errorClassName(error),
        errorCode: errorCodeOf(error),
        attempts,
        err: error,
        deadLetter: spec.deadLetter,
      },
      'record dead-lettered',
    );
    const dead = deadLetterMessage({ topic, partition, message }, error, new Date(), attempts);
    return { kind: 'dead', message: dead, bytes: messageBytes(dead) };
  }

  /**
   * Decodes and handles one record. A retryable handler failure is retried in
   * place (the partition waits, so its order is kept) with backoff, up to
   * workerMaxAttempts, then dead-lettered; a fatal one is dead-lettered at once.
   * The registry being down is no fault of the record: that error is thrown, and
   * the chunk is retried from the last commit for as long as the outage lasts.
   * Resolves undefined when the worker stops during a backoff.
   */
  async function handle(topic: string, partition: number, message: KafkaMessage, heartbeat: () => Promise<void>, running: () => boolean): Promise<Outcome | undefined> {
    const headers = headersToStrings(message.headers);
    const correlationId = correlationIdOf(headers, { topic, partition, offset: message.offset });
    let value: unknown;
    try {
      ({ value } = await decodeFramed(registry, message.value, reader));
    } catch (error) {
      const retryable = isRetryable(error);
      metrics.errors.inc({ ...labels, class: retryable ? 'retryable' : 'fatal' });
      if (retryable) throw error;
      return deadLetter(topic, partition, message, correlationId, error, 1);
    }
    const source = `${topic}/${partition}/${message.offset}`;
    for (let attempt = 1; ; attempt++) {
      const startedAt = performance.now();
      try {
        const context = new RecordContext(log, topic, partition, message, headers, correlationId);
        const result = await handler(value, context);
        const messages = normalizeOutputs(result, message.key).map((output): Message => ({
          key: output.key,
          partition: outputPartition(output.key),
          value: encoder.encode(output.value),
          headers: { ...output.headers, [CORRELATION_HEADER]: correlationId, [SOURCE_HEADER]: source },
        }));
        metrics.handlerSeconds.observe(labels, (performance.now() - startedAt) / 1000);
        let bytes = 0;
        for (const output of messages) bytes += messageBytes(output);
        // Producing it could only fail the same way on every re-delivery.
        if (bytes > chunkBytes) return deadLetter(topic, partition, message, correlationId, new OutputTooLargeError(bytes, chunkBytes), attempt);
        return { kind: 'emit', messages, bytes };
      } catch (error) {
        const retryable = isRetryable(error);
        metrics.errors.inc({ ...labels, class: retryable ? 'retryable' : 'fatal' });
        if (!retryable || attempt >= retryPolicy.maxAttempts) return deadLetter(topic, partition, message, correlationId, error, attempt);
        const delayMs = backoffMs(attempt, retryPolicy);
        counters.retries++;
        metrics.retries.inc(labels);
        log.warn(
          { topic, partition, offset: message.offset, correlationId, attempt, maxAttempts: retryPolicy.maxAttempts, delayMs, errorClass: errorClassName(error), err: error },
          'retryable handler failure; retrying the record',
        );
        if (!(await waitWithHeartbeats(delayMs, heartbeat, running))) return undefined;
      }
    }
  }

  /** Exactly once: records below the group's committed offset were committed by a previous owner; skip them. */
  async function resumePoint(payload: EachBatchPayload, pending: KafkaMessage[]): Promise<KafkaMessage[] | undefined> {
    if (!transactions) return pending;
    const { topic, partition } = payload.batch;
    const { resumeFrom, transactionalId } = await transactions.prepare(topic, partition);
    const first = pending[0];
    if (resumeFrom === undefined || first === undefined) return pending;
    if (BigInt(first.offset) > resumeFrom) {
      // The consumer is ahead of what is committed: go back rather than leave a gap.
      log.warn({ topic, partition, transactionalId, resumeFrom: resumeFrom.toString(), fetched: first.offset }, 'fetch position is past the committed offset; seeking back');
      consumer.seek({ topic, partition, offset: resumeFrom.toString() });
      return undefined;
    }
    const kept = pending.filter((m) => BigInt(m.offset) >= resumeFrom);
    const skipped = pending.length - kept.length;
    if (skipped > 0) {
      log.info({ topic, partition, transactionalId, resumeFrom: resumeFrom.toString(), skipped }, 'skipping records a previous owner already committed');
      payload.resolveOffset(pending[skipped - 1]!.offset);
    }
    return kept;
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const resumed = await resumePoint(payload, batch.messages);
    if (!resumed) return;
    const messages: KafkaMessage[] = resumed;

    function topicMessagesOf(chunk: Chunk): TopicMessages[] {
      const topicMessages: TopicMessages[] = [];
      if (chunk.outputs.length > 0) topicMessages.push({ topic: spec.output, messages: chunk.outputs });
      if (chunk.deadLetters.length > 0) topicMessages.push({ topic: spec.deadLetter, messages: chunk.deadLetters });
      return topicMessages;
    }

    /**
     * Commits the chunk: exactly once, produces it and its offset in one
     * transaction; at least once, waits for `sent` (its produce, started
     * earlier) and then commits its offset. Called only once the previous chunk
     * of the partition is committed, so offsets and transactions stay in order.
     */
    async function commit(chunk: Chunk, sent: Promise<unknown> | undefined): Promise<void> {
      const next = BigInt(chunk.last.offset) + 1n;
      try {
        if (transactions) {
          await transactions.commit(topic, partition, topicMessagesOf(chunk), next);
          metrics.transactions.inc({ ...labels, outcome: 'committed' });
        } else {
          await sent;
          // The payload's commit, not consumer.commitOffsets: the latter is a no-op
          // once stop() has begun, and the chunk in flight must still be committed.
          await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next.toString() }] }] });
        }
      } catch (error) {
        counters.retries++;
        if (error instanceof TransactionAbortedError) metrics.transactions.inc({ ...labels, outcome: 'aborted' });
        // The output topic may have gained partitions (or a partition it had be unknown): re-read its count before the retry.
        await refreshOutputPartitions();
        log.error(
          { err: error, errorClass: errorClassName(error), retryable: isRetryable(error), topic, partition, firstOffset: chunk.first.offset, lastOffset: chunk.last.offset },
          'producing or committing a chunk failed; it is re-delivered from the last commit',
        );
        throw error;
      }
      resolveOffset(chunk.last.offset);
      counters.processed += chunk.count;
      counters.emitted += chunk.outputs.length;
      counters.deadLettered += chunk.deadLetters.length;
      metrics.eventsIn.inc(labels, chunk.count);
      metrics.eventsOut.inc(labels, chunk.outputs.length);
      lagLabels.add(PartitionTransactions.assignmentKey(topic, partition));
      metrics.lag.set({ ...labels, topic, partition: String(partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - next)));
      await heartbeat();
    }

    let index = 0;
    // A record handled that did not fit in the previous chunk's byte budget: it starts the next one.
    let carried: { message: KafkaMessage; outcome: Outcome } | undefined;
    // The previous chunk's commit: the next chunk is handled (and, at least once,
    // produced) while it runs, and committed only after it.
    let committing: Promise<void> | undefined;
    // At least once: the previous chunk's send (see sendChunk).
    let lastSent: Promise<unknown> | undefined;
    try {
      while (carried || index < messages.length) {
        // On stop or after a seek/rebalance, leave the rest to whoever fetches next:
        // nothing past the last commit in flight has been produced, so nothing is lost.
        if (!isRunning() || isStale()) return;
        const chunk = await nextChunk();
        if (!chunk) return;
        const sent = transactions ? undefined : sendChunk(chunk);
        await committing;
        committing = commit(chunk, sent);
        // Observed by the await above (next chunk) or in finally; a rejection must not go unhandled meanwhile.
        committing.catch(() => undefined);
      }
    } finally {
      // Finishes (commits) the chunk in flight whatever happens next: stopping, a
      // rebalance or a failure handling the next chunk; its failure is the one thrown.
      await committing;
    }

    /**
     * At least once: produces the chunk ahead of its offset commit (which waits
     * for the previous chunk's). The send itself starts once the previous chunk's
     * is acknowledged: two sends in flight could overtake each other in kafkajs
     * before they reach the broker (a metadata refresh), reordering the partition.
     */
    function sendChunk(chunk: Chunk): Promise<unknown> | undefined {
      const topicMessages = topicMessagesOf(chunk);
      if (topicMessages.length === 0) return undefined;
      const producer = producers[partition % producers.length]!;
      const previous = lastSent;
      const sent = (previous ?? Promise.resolve()).then(() => producer.sendBatch({ topicMessages, acks: -1 }));
      lastSent = sent;
      // Observed in commit(); if an earlier chunk fails first, this one is re-delivered and produced again anyway.
      sent.catch(() => undefined);
      return sent;
    }

    /** Handles records up to the chunk's record and byte limits; undefined when the worker stopped during a backoff (nothing of it produced). */
    async function nextChunk(): Promise<Chunk | undefined> {
      let chunk: Chunk | undefined;
      let current: KafkaMessage | undefined;
      try {
        while (carried || index < messages.length) {
          let handled = carried;
          carried = undefined;
          if (!handled) {
            const message = messages[index++]!;
            current = message;
            const outcome = await handle(topic, partition, message, heartbeat, isRunning);
            // Stopped during a backoff: none of this chunk is committed, so all of it is re-delivered.
            if (!outcome) return undefined;
            handled = { message, outcome };
          }
          const { message, outcome } = handled;
          if (chunk && chunk.bytes + outcome.bytes > chunkBytes) {
            carried = handled;
            break;
          }
          chunk ??= { first: message, last: message, count: 0, outputs: [], deadLetters: [], bytes: 0 };
          chunk.last = message;
          chunk.count++;
          chunk.bytes += outcome.bytes;
          if (outcome.kind === 'emit') for (const output of outcome.messages) chunk.outputs.push(output);
          else chunk.deadLetters.push(outcome.message);
          if (chunk.count >= chunkSize) break;
        }
      } catch (error) {
        counters.retries++;
        const record = current && {
          offset: current.offset,
          key: current.key?.toString('utf8') ?? null,
          correlationId: correlationIdOf(headersToStrings(current.headers), { topic, partition, offset: current.offset }),
        };
        log.error(
          { err: error, errorClass: errorClassName(error), retryable: isRetryable(error), topic, partition, firstOffset: chunk?.first.offset ?? current?.offset, ...record },
          'retryable failure handling a record; the chunk is re-delivered from the last commit',
        );
        throw error;
      }
      return chunk;
    }
  }

  async function disconnectClients(): Promise<void> {
    await consumer.disconnect();
    await Promise.all([disconnectProducers(), transactions?.close(), admin.disconnect()]);
  }

  try {
    await Promise.all([...producers.map((p) => p.connect()), admin.connect()]);
    await fetchOutputPartitions();
    await consumer.connect();
    await consumer.subscribe({ topic: spec.input, fromBeginning: true });
    await consumer.run({
      // Offsets are committed by this runtime only: with the chunk's outputs (at
      // least once) or inside the chunk's transaction (exactly once).
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.workerConcurrency,
      eachBatch,
    });
  } catch (error) {
    log.error({ err: error }, 'worker failed to start');
    for (const result of await Promise.allSettled([consumer.disconnect(), disconnectProducers(), transactions?.close(), admin.disconnect()])) {
      if (result.status === 'rejected') log.warn({ err: result.reason }, 'disconnecting after a failed start also failed');
    }
    throw error;
  }
  log.info(
    {
      input: spec.input,
      output: spec.output,
      deadLetter: spec.deadLetter,
      delivery: spec.delivery,
      outputSchemaId: outputId,
      batchSize: chunkSize,
      concurrency: config.workerConcurrency,
      maxAttempts: retryPolicy.maxAttempts,
    },
    'worker started',
  );

  let stopping: Promise<void> | undefined;
  async function shutdown(): Promise<void> {
    const startedAt = Date.now();
    log.info('worker stopping');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ShutdownTimeoutError(`worker ${spec.name}`, config.shutdownTimeoutMs)), config.shutdownTimeoutMs);
    });
    try {
      // disconnect() stops fetching, waits for the batch in flight and leaves the group.
      await Promise.race([disconnectClients(), deadline]);
    } catch (error) {
      log.error({ err: error, counters: { ...counters } }, 'worker did not stop cleanly');
      if (error instanceof ShutdownTimeoutError) {
        // Past the budget the process is about to exit; still try not to leave the producer's connections open in-process.
        Promise.all([disconnectProducers(), transactions?.close(), admin.disconnect()]).catch((cause: unknown) =>
          log.warn({ err: cause }, 'disconnecting the producers after the shutdown timeout failed'),
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
    log.info({ counters: { ...counters }, durationMs: Date.now() - startedAt }, 'worker stopped');
  }

  return {
    name: spec.name,
    counters,
    stop: () => (stopping ??= shutdown()),
  };
}
