import { readFileSync } from 'node:fs';
import type { Schema } from 'avsc';
import { createTypes } from '../../core/formats/avro-types.ts';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createEncoder } from '../../core/serde.ts';
import { startRegistry } from '../../registry/server.ts';
import { subjectFor, type TopicSpec, type Topology, type ValueSchema, type WorkerSpec } from '../../topology/model.ts';
import type { AnyHandler } from '../../consumers/handler.ts';
import { startWorker, type RunningWorker } from '../../consumers/start-worker.ts';
import { createWorkerMetrics, type WorkerMetrics } from '../../consumers/metrics.ts';
import { createKafka, type KafkaProducer, type KafkaRecord, type RecordHeaders } from '../../kafka/index.ts';
import { createTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from './platform.ts';

/**
 * A worker under test: its own topics, group and registry (on the test broker),
 * a raw producer for input records, and an independent consumer collecting
 * everything on the output and dead-letter topics.
 */

export const SCORE_ORDERS = `${PROJECT_ROOT}/consumers/workers/score-orders.ts`;

function valueSchema(topic: string, file: string): ValueSchema {
  const schema = JSON.parse(readFileSync(file, 'utf8')) as Schema;
  return { file, subject: subjectFor(topic), schema, text: JSON.stringify(schema) };
}

/** A record as read back from the output or dead-letter topic. */
export type CollectedRecord = KafkaRecord;

export interface Collector {
  readonly records: CollectedRecord[];
  /** Resolves with the collected records once `done` holds for them. */
  waitFor(done: (records: CollectedRecord[]) => boolean, timeoutMs?: number, what?: string): Promise<CollectedRecord[]>;
  close(): Promise<void>;
}

/** An independent read_committed reader of `topics` (its own group, from the beginning), as any downstream consumer. */
export async function collect(topics: string[]): Promise<Collector> {
  const config = testConfig({ logLevel: 'silent' });
  const consumer = createKafka(config, testLogger(config, 'collector'), 'test-collector').groupConsumer({
    groupId: uniqueName('collector'),
    topics,
    protocol: 'classic',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    maxWaitMs: 100,
    concurrency: 64,
    fallback: 'earliest',
    stableOffsets: false,
  });
  const records: CollectedRecord[] = [];
  await consumer.start({
    batch: async (batch) => {
      for (const record of batch.records) records.push(record);
    },
  });
  return {
    records,
    async waitFor(done, timeoutMs = 30_000, what = 'records') {
      const deadline = Date.now() + timeoutMs;
      while (!done(records)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${records.length})`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return records;
    },
    close: () => consumer.close(),
  };
}

/** An input record as the tests write it. */
export interface InputRecord {
  key: string | Buffer | null;
  value: Buffer | null;
  headers?: Record<string, string>;
  /** Epoch milliseconds. */
  timestamp?: string;
}

export function toOutgoing(topic: string, record: InputRecord) {
  return {
    topic,
    key: typeof record.key === 'string' ? Buffer.from(record.key) : record.key,
    value: record.value,
    headers: Object.entries(record.headers ?? {}).map(([name, value]) => [name, Buffer.from(value)] as const),
    ...(record.timestamp === undefined ? {} : { timestamp: BigInt(record.timestamp) }),
  };
}

export interface WorkerHarness {
  config: SluiceConfig;
  logger: Logger;
  registry: RegistryClient;
  topology: Topology;
  spec: WorkerSpec;
  /** Frames OrderPlaced events with the id registered for the input subject. */
  orders: ReturnType<typeof createEncoder>;
  producer: KafkaProducer;
  collector: Collector;
  send(records: InputRecord[]): Promise<void>;
  start(handler?: AnyHandler, overrides?: Partial<WorkerSpec>, metrics?: WorkerMetrics): Promise<RunningWorker>;
  /** Takes the registry down (its state stays on its topic) ... */
  stopRegistry(): Promise<void>;
  /** ... and brings it back on the same port, so the workers' client finds it again. */
  restartRegistry(): Promise<void>;
  close(): Promise<void>;
}

export async function workerHarness(options: { partitions?: number; configOverrides?: Parameters<typeof testConfig>[0] } = {}): Promise<WorkerHarness> {
  const partitions = options.partitions ?? 3;
  const config = testConfig({ workerBatchSize: '50', shutdownTimeoutMs: '20000', ...options.configOverrides });
  const logger = testLogger(config, 'worker-test');
  const input = uniqueName('orders.placed');
  const output = uniqueName('orders.scored');
  const deadLetter = `${input}.dlq`;
  await createTopics([
    { topic: input, numPartitions: partitions },
    { topic: output, numPartitions: partitions },
    { topic: deadLetter, numPartitions: 1 },
  ]);
  let server = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
  const registryPort = Number(new URL(server.url).port);
  const registry = new RegistryClient(server.url);

  const topic = (name: string, schemaFile?: string): TopicSpec => ({
    name,
    partitions: name === deadLetter ? 1 : partitions,
    replicationFactor: 1,
    configs: {},
    ...(schemaFile ? { valueSchema: valueSchema(name, schemaFile) } : {}),
  });
  const spec: WorkerSpec = {
    name: 'score-orders',
    input,
    output,
    deadLetter,
    groupId: uniqueName('sluice.score-orders-test'),
    handler: SCORE_ORDERS,
    delivery: 'at-least-once',
  };
  const topology: Topology = {
    file: `${PROJECT_ROOT}/tests/(worker harness)`,
    topics: [topic(input, `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`), topic(output, `${PROJECT_ROOT}/schemas/OrderScored.avsc`), topic(deadLetter)],
    routes: [],
    workers: [spec],
  };
  const placed = topology.topics[0]!.valueSchema!;
  const orders = createEncoder(placed.subject, await registry.register(placed.subject, placed.text), createTypes(placed.schema));

  const producer = seam('sluice-test-producer').producer();
  const collector = await collect([output, deadLetter]);
  const workers: RunningWorker[] = [];

  return {
    config,
    logger,
    registry,
    topology,
    spec,
    orders,
    producer,
    collector,
    async send(records) {
      await producer.send(records.map((r) => toOutgoing(input, r)));
    },
    async start(handler, overrides = {}, metrics) {
      const worker = await startWorker({
        config,
        logger,
        spec: { ...spec, ...overrides },
        topology,
        registry,
        // Each worker under test counts on its own, so tests can read exact figures.
        metrics: metrics ?? createWorkerMetrics(),
        ...(handler ? { handler } : {}),
      });
      workers.push(worker);
      return worker;
    },
    async stopRegistry() {
      await server.close();
    },
    async restartRegistry() {
      server = await startRegistry({ config, logger, port: registryPort, topic: config.registryTopic });
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await collector.close();
      await producer.close();
      await server.close();
    },
  };
}

export const outputsOf = (h: WorkerHarness, records: CollectedRecord[]): CollectedRecord[] => records.filter((r) => r.topic === h.spec.output);
export const deadLettersOf = (h: WorkerHarness, records: CollectedRecord[]): CollectedRecord[] => records.filter((r) => r.topic === h.spec.deadLetter);

/** The last value of header `name` as text. */
export function headerText(headers: RecordHeaders, name: string): string | undefined {
  let value: Buffer | null | undefined;
  for (const [n, v] of headers) if (n === name) value = v;
  return value?.toString();
}

/** The group's committed offset and the log end of every partition of `topic`. */
export async function offsetsOf(groupId: string, topic: string): Promise<{ committed: Map<number, bigint>; ends: Map<number, bigint> }> {
  return withKafkaAdmin(async (admin) => {
    const committed = await admin.committedOffsets(groupId, [topic]);
    const ends = await admin.watermarks(topic);
    return { committed: new Map(committed.map((c) => [c.partition, c.offset])), ends: new Map(ends.map((w) => [w.partition, w.high])) };
  });
}
