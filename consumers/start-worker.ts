import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { SluiceConfig } from '../core/config.ts';
import { describeCause, RegistryError, WorkerConfigError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { retryPolicies } from '../core/retry.ts';
import { createCodecEncoder } from '../core/serde.ts';
import { createKafka, partitionForKey } from '../kafka/index.ts';
import { schemaTypeOf, topicByName, valueCodec, type Topology, type ValueSchema, type WorkerSpec } from '../topology/model.ts';
import type { AnyHandler, Handler } from './handler.ts';
import { WorkerContracts } from './contract-rules.ts';
import { workerMetrics, type WorkerMetrics } from './metrics.ts';
import { RecordProcessor } from './record-processor.ts';
import { WorkerRuntime, type WorkerCounters, type WorkerSeam } from './worker-runtime.ts';

/**
 * Starting a stream worker: loads its handler and schemas, builds its Kafka
 * clients through the seam (one group consumer, one output producer) and
 * hands them to a WorkerRuntime (consumers/worker-runtime.ts).
 */

export type { WorkerCounters } from './worker-runtime.ts';

export interface RunningWorker {
  readonly name: string;
  readonly counters: Readonly<WorkerCounters>;
  /** Stops fetching, commits what was handled, leaves the group. Idempotent. */
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
  /** The Kafka clients; built from `config` when omitted (unit tests pass a fake seam). */
  seam?: WorkerSeam;
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

/** How long a fetched output partition count is trusted before it is fetched again (in the background). */
const PARTITION_COUNT_MAX_AGE_MS = 60_000;

/**
 * Where Kafka's default partitioner puts a key: murmur2 for keyed records (as
 * the Java client, so keyed outputs land where any other producer would put
 * them), round robin for unkeyed ones. The count is re-read in the background
 * once it is a minute old.
 */
export class OutputPartitioner {
  readonly #topic: string;
  readonly #count: (topic: string) => Promise<number>;
  readonly #log: Logger;
  #partitions = 0;
  #fetchedAt = 0;
  #unkeyed = Math.floor(Math.random() * 0x7fffffff);

  constructor(topic: string, count: (topic: string) => Promise<number>, log: Logger) {
    this.#topic = topic;
    this.#count = count;
    this.#log = log;
  }

  async load(workerName: string): Promise<void> {
    const count = await this.#count(this.#topic);
    if (count === 0) throw new WorkerConfigError(workerName, `output topic "${this.#topic}" has no partitions in the broker's metadata`);
    this.#partitions = count;
    this.#fetchedAt = Date.now();
  }

  partition(key: Buffer | null): number {
    if (Date.now() - this.#fetchedAt > PARTITION_COUNT_MAX_AGE_MS) this.#refreshInBackground();
    if (key === null) return (this.#unkeyed = (this.#unkeyed + 1) & 0x7fffffff) % this.#partitions;
    return partitionForKey(key, this.#partitions);
  }

  /** One refresh at a time: the age is reset as it starts. */
  #refreshInBackground(): void {
    this.#fetchedAt = Date.now();
    void this.#count(this.#topic)
      .then((count) => {
        if (count > 0 && count !== this.#partitions) this.#log.info({ output: this.#topic, from: this.#partitions, to: count }, 'output topic partition count changed');
        if (count > 0) this.#partitions = count;
      })
      .catch((error: unknown) => this.#log.warn({ err: error, output: this.#topic }, 'refreshing the output topic partition count failed; keeping the last one'));
  }
}

/** The worker's Kafka clients: one group consumer, and one transactional (exactly once) or idempotent (at least once) producer. */
export function kafkaSeam(config: SluiceConfig, spec: WorkerSpec, log: Logger, instance: string): WorkerSeam {
  const name = `worker-${spec.name}`;
  const kafka = createKafka(config, log, name);
  const consumer = kafka.groupConsumer({
    groupId: spec.groupId,
    topics: [spec.input],
    protocol: config.workerGroupProtocol,
    sessionTimeoutMs: config.workerSessionTimeoutMs,
    heartbeatIntervalMs: Math.min(3000, Math.floor(config.workerSessionTimeoutMs / 3)),
    // A short fetch wait bounds how long stop() waits for an idle long poll.
    maxWaitMs: 500,
    readCommitted: true,
    concurrency: config.workerConcurrency,
    maxBufferedRecords: config.workerBatchSize * 2,
    fallback: 'earliest',
    stableOffsets: spec.delivery === 'exactly-once',
  });
  const output =
    spec.delivery === 'exactly-once'
      ? // One transactional id per instance: a restarted instance with the same id fences its predecessor's open transaction.
        // Two producers in turn: a transaction is prepared while the one before commits (TransactionalOutput.unitsInFlight).
        kafka.transactionalOutput({ consumer, name: `${name}-tx`, transactionalId: `${spec.groupId}-${instance}`, producers: 2 })
      : kafka.idempotentOutput({ consumer, name: `${name}-out` });
  return { consumer, output };
}

/** A pinned worker whose registry has no version of its properties cannot start: said as a mistake in its topology entry. */
function pinnedReaderMissing(spec: WorkerSpec, subject: string, error: unknown): unknown {
  if (!spec.useLatestWithMetadata || !(error instanceof RegistryError) || error.statusCode !== 404) return error;
  const wanted = Object.entries(spec.useLatestWithMetadata)
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
  return new WorkerConfigError(spec.name, `input.useLatestWithMetadata: no version of ${subject} has the metadata properties ${wanted} (${error.message})`);
}

let instances = 0;

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
  const outputCodec = valueCodec(outputSchema);
  const encoder = createCodecEncoder(outputSchema.subject, outputId, outputCodec);
  // The input's migration and READ rules and the output's WRITE rules, kept current from the registry as the ingress keeps its routes'.
  const contracts = new WorkerContracts({
    registry,
    input: { subject: inputSchema.subject, schemaId: 0, codec: inputCodec, schemaText: inputSchema.text },
    inputReader: reader,
    output: { subject: outputSchema.subject, schemaId: outputId, codec: outputCodec, schemaText: outputSchema.text },
    ...(spec.useLatestWithMetadata ? { useLatestWithMetadata: spec.useLatestWithMetadata } : {}),
    log,
  });
  const metrics = options.metrics ?? workerMetrics();

  // The transactional id must be stable for one instance and distinct between the instances of a group.
  const instance = `${process.pid}-${instances++}`;
  const seam = options.seam ?? kafkaSeam(config, spec, log, instance);
  const partitioner = new OutputPartitioner(spec.output, (topic) => seam.consumer.partitionCount(topic), log);

  let runtime: WorkerRuntime | undefined;
  try {
    await partitioner.load(spec.name);
    await contracts.start().catch((error: unknown) => {
      throw pinnedReaderMissing(spec, inputSchema.subject, error);
    });
    await seam.output.init?.();
    const processor = new RecordProcessor({
      workerName: spec.name,
      output: spec.output,
      deadLetter: spec.deadLetter,
      registry,
      reader,
      encoder,
      contracts,
      handler,
      retry: retryPolicies.handler({ maxAttempts: config.workerMaxAttempts, baseMs: config.workerRetryBaseMs, maxMs: config.workerRetryMaxMs }),
      chunkBytes: config.workerBatchBytes,
      outputPartition: (key) => partitioner.partition(key),
      metrics,
      log,
      onRetry: () => runtime && runtime.counters.retries++,
    });
    runtime = new WorkerRuntime({
      name: spec.name,
      seam,
      processor,
      chunkSize: config.workerBatchSize,
      chunkBytes: config.workerBatchBytes,
      round: { maxRecords: config.workerTxnMaxRecords, maxBytes: config.workerTxnMaxBytes, maxMs: config.workerTxnMaxMs },
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      metrics,
      log,
    });
    await runtime.start();
  } catch (error) {
    log.error({ err: error }, 'worker failed to start');
    contracts.stop();
    for (const result of await Promise.allSettled([seam.consumer.close(), seam.output.close()])) {
      if (result.status === 'rejected') log.warn({ err: result.reason }, 'closing the clients after a failed start also failed');
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
      batchSize: config.workerBatchSize,
      concurrency: config.workerConcurrency,
      maxAttempts: config.workerMaxAttempts,
    },
    'worker started',
  );
  const started = runtime;
  return {
    name: spec.name,
    counters: started.counters,
    stop: async () => {
      contracts.stop();
      await started.stop();
    },
  };
}
