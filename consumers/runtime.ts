import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Consumer, EachBatchPayload, KafkaMessage, Message, Producer, TopicMessages } from 'kafkajs';
import { createTypes, type AvroTypes } from '../core/avro.ts';
import type { SluiceConfig } from '../core/config.ts';
import { describeCause, isRetryable, ShutdownTimeoutError, WorkerConfigError } from '../core/errors.ts';
import { createKafka } from '../core/kafka.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { createEncoder, decodeFramed, type EventEncoder } from '../core/serde.ts';
import { topicByName, type Topology, type ValueSchema, type WorkerSpec } from '../topology/model.ts';
import { normalizeOutputs, type AnyHandler, type Handler, type HandlerContext } from './handler.ts';
import {
  CORRELATION_HEADER,
  correlationIdOf,
  deadLetterMessage,
  errorClassName,
  errorCodeOf,
  headersToStrings,
  SOURCE_HEADER,
} from './headers.ts';

/**
 * The stream-worker runtime: consumes a topic in a consumer group, decodes each
 * record to the worker's reader schema, runs the handler, and produces its
 * outputs, at least once.
 *
 * Delivery: records are handled in chunks of `workerBatchSize`; a chunk's outputs
 * and dead letters are produced with one idempotent, acks=all producer, and only
 * once the broker has acknowledged them is the chunk's offset committed. A crash
 * anywhere re-delivers at most the uncommitted chunks, whose outputs may then
 * appear twice (hence handlers should be deterministic).
 */

export interface WorkerCounters {
  /** Input records handled (emitted or dead-lettered) and committed. */
  processed: number;
  /** Output records produced and acknowledged. */
  emitted: number;
  deadLettered: number;
  /** Batches abandoned on a retryable failure, to be re-delivered from the last commit. */
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

type Outcome = { kind: 'emit'; messages: Message[] } | { kind: 'dead'; message: Message };

export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { config, spec, topology, registry } = options;
  const log = options.logger.child({ worker: spec.name, groupId: spec.groupId });

  const inputSchema = valueSchemaOf(spec, topology, spec.input, 'input');
  const outputSchema = valueSchemaOf(spec, topology, spec.output, 'output');
  const readerTypes: AvroTypes = createTypes(inputSchema.schema);
  // The registry client caches decoders by (writer id, reader key); the hash keeps
  // two workers with different reader schemas for one subject apart.
  const reader = { types: readerTypes, key: `${inputSchema.subject}#${createHash('sha256').update(inputSchema.text).digest('hex').slice(0, 16)}` };
  const handler = (options.handler ?? (await loadHandler(spec))) as Handler<unknown, unknown>;
  // Idempotent: registering the schema already registered returns its id.
  const outputId = await registry.register(outputSchema.subject, outputSchema.text);
  const encoder: EventEncoder = createEncoder(outputSchema.subject, outputId, createTypes(outputSchema.schema));

  const counters: WorkerCounters = { processed: 0, emitted: 0, deadLettered: 0, retries: 0 };
  const chunkSize = config.workerBatchSize;

  const kafka = createKafka(config, log, `worker-${spec.name}`);
  // A short fetch wait bounds how long stop() waits for an idle long-poll to return
  // (kafkajs's 5 s default dominated shutdown); an idle worker polls once a second.
  const consumer: Consumer = kafka.consumer({ groupId: spec.groupId, maxWaitTimeInMs: 1000 });
  // Unbounded retries are what kafkajs requires to keep idempotence; a broker
  // outage stalls the worker (and shutdown is bounded by shutdownTimeoutMs).
  const producer: Producer = kafka.producer({ idempotent: true, retry: { retries: Number.MAX_SAFE_INTEGER } });

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    log.info(
      { memberId: payload.memberId, isLeader: payload.isLeader, assignment: payload.memberAssignment, durationMs: payload.duration },
      'joined the consumer group; partitions assigned',
    );
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    log.error({ err: payload.error, restart: payload.restart }, payload.restart ? 'consumer crashed; kafkajs restarts it' : 'consumer crashed and will not restart');
  });

  async function handle(topic: string, partition: number, message: KafkaMessage): Promise<Outcome> {
    const headers = headersToStrings(message.headers);
    const correlationId = correlationIdOf(headers, { topic, partition, offset: message.offset });
    try {
      const { value } = await decodeFramed(registry, message.value, reader);
      const context = new RecordContext(log, topic, partition, message, headers, correlationId);
      const result = await handler(value, context);
      const source = `${topic}/${partition}/${message.offset}`;
      const messages = normalizeOutputs(result, message.key).map(
        (output): Message => ({
          key: output.key,
          value: encoder.encode(output.value),
          headers: { ...output.headers, [CORRELATION_HEADER]: correlationId, [SOURCE_HEADER]: source },
        }),
      );
      return { kind: 'emit', messages };
    } catch (error) {
      // The registry or broker being down is no fault of the record: the chunk is retried instead.
      if (isRetryable(error)) throw error;
      log.warn(
        {
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          correlationId,
          errorClass: errorClassName(error),
          errorCode: errorCodeOf(error),
          err: error,
          deadLetter: spec.deadLetter,
        },
        'record dead-lettered',
      );
      return { kind: 'dead', message: deadLetterMessage({ topic, partition, message }, error, new Date()) };
    }
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const { topic, partition, messages } = batch;
    for (let start = 0; start < messages.length; start += chunkSize) {
      // On stop or after a seek/rebalance, leave the rest to whoever fetches next:
      // nothing past the last commit has been produced, so nothing is lost.
      if (!isRunning() || isStale()) return;
      const chunk = messages.slice(start, start + chunkSize);
      const outputs: Message[] = [];
      const deadLetters: Message[] = [];
      let current: KafkaMessage | undefined;
      try {
        for (const message of chunk) {
          current = message;
          const outcome = await handle(topic, partition, message);
          if (outcome.kind === 'emit') outputs.push(...outcome.messages);
          else deadLetters.push(outcome.message);
        }
        const topicMessages: TopicMessages[] = [];
        if (outputs.length > 0) topicMessages.push({ topic: spec.output, messages: outputs });
        if (deadLetters.length > 0) topicMessages.push({ topic: spec.deadLetter, messages: deadLetters });
        current = undefined;
        if (topicMessages.length > 0) await producer.sendBatch({ topicMessages, acks: -1 });
        const last = chunk[chunk.length - 1]!.offset;
        resolveOffset(last);
        // The payload's commit, not consumer.commitOffsets: the latter is a no-op
        // once stop() has begun, and the chunk in flight must still be committed.
        await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: (BigInt(last) + 1n).toString() }] }] });
      } catch (error) {
        counters.retries++;
        const record = current && {
          offset: current.offset,
          key: current.key?.toString('utf8') ?? null,
          correlationId: correlationIdOf(headersToStrings(current.headers), { topic, partition, offset: current.offset }),
        };
        log.error(
          { err: error, errorClass: errorClassName(error), retryable: isRetryable(error), topic, partition, firstOffset: chunk[0]?.offset, ...record },
          record ? 'retryable failure handling a record; the chunk is re-delivered from the last commit' : 'producing or committing a chunk failed; it is re-delivered from the last commit',
        );
        throw error;
      }
      counters.processed += chunk.length;
      counters.emitted += outputs.length;
      counters.deadLettered += deadLetters.length;
      await heartbeat();
    }
  }

  try {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: spec.input, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.workerConcurrency,
      eachBatch,
    });
  } catch (error) {
    log.error({ err: error }, 'worker failed to start');
    for (const result of await Promise.allSettled([consumer.disconnect(), producer.disconnect()])) {
      if (result.status === 'rejected') log.warn({ err: result.reason }, 'disconnecting after a failed start also failed');
    }
    throw error;
  }
  log.info(
    { input: spec.input, output: spec.output, deadLetter: spec.deadLetter, outputSchemaId: outputId, batchSize: chunkSize, concurrency: config.workerConcurrency },
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
      await Promise.race([
        (async () => {
          await consumer.disconnect();
          await producer.disconnect();
        })(),
        deadline,
      ]);
    } catch (error) {
      log.error({ err: error, counters: { ...counters } }, 'worker did not stop cleanly');
      if (error instanceof ShutdownTimeoutError) {
        // Past the budget the process is about to exit; still try not to leave the producer's connections open in-process.
        producer.disconnect().catch((cause: unknown) => log.warn({ err: cause }, 'disconnecting the producer after the shutdown timeout failed'));
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
