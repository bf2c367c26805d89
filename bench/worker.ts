import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Schema } from 'avsc';
import { Kafka, logLevel, type Message } from 'kafkajs';
import { createTypes } from '../core/avro.ts';
import { loadConfig, PROJECT_ROOT, type SluiceConfig } from '../core/config.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { createEncoder } from '../core/serde.ts';
import { createWorkerMetrics } from '../consumers/metrics.ts';
import { startWorker } from '../consumers/runtime.ts';
import { startRegistry } from '../registry/server.ts';
import { subjectFor, type DeliveryMode, type Topology, type WorkerSpec } from '../topology/model.ts';
import { randomOrder } from '../tests/support/orders.ts';
import type { WorkerFigures } from './report.ts';

/**
 * Worker throughput, in one run against one broker: score-orders exactly once
 * and at least once, against a bare kafkajs loop that copies the same records
 * from topic to topic (consume, produce acks=all, commit; no decoding, no
 * handler, no transactions). Each contender reads the same pre-filled input
 * topic with its own group; the clock runs from its first record to its last,
 * so group joins do not count.
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 node bench/worker.ts [events]
 *
 * Prints one JSON object on stdout.
 */

const PARTITIONS = 6;

export interface WorkerBenchOptions {
  brokers: string[];
  registryUrl: string;
  runId: string;
  mode: 'quick' | 'full';
  config: SluiceConfig;
  logger: Logger;
}

interface Bench {
  events: number;
  run: string;
  kafka: Kafka;
  config: SluiceConfig;
  log: Logger;
  names: { input: string; copy: string; exactlyOnce: string; atLeastOnce: string; deadLetter: string };
}

function schemaOf(topic: string, file: string) {
  const schema = JSON.parse(readFileSync(`${PROJECT_ROOT}/schemas/${file}`, 'utf8')) as Schema;
  return { file, subject: subjectFor(topic), schema, text: JSON.stringify(schema) };
}

async function fillInput(b: Bench, registry: RegistryClient): Promise<void> {
  const { names, kafka } = b;
  const placed = schemaOf(names.input, 'OrderPlaced.avsc');
  const encoder = createEncoder(placed.subject, await registry.register(placed.subject, placed.text), createTypes(placed.schema));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  for (let i = 0; i < b.events; i += 5000) {
    const messages: Message[] = Array.from({ length: Math.min(5000, b.events - i) }, () => {
      const order = randomOrder();
      return { key: order.orderId, value: encoder.encode(order) };
    });
    await producer.send({ topic: names.input, messages, acks: -1 });
  }
  await producer.disconnect();
}

/**
 * Time from `started` (the contender's consumer was just started, so both pay one
 * group join) to its last record. Timing from the first record instead would
 * flatter whoever commits in few large chunks: most of the work precedes the
 * first commit.
 */
async function clock(events: number, started: number, progress: () => number, timeoutMs = 300_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (progress() < events) {
    if (Date.now() > deadline) throw new Error(`only ${progress()} of ${events} processed`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - started;
}

async function bareCopy(b: Bench, round: number): Promise<number> {
  const { names, kafka, run, config } = b;
  const consumer = kafka.consumer({ groupId: `bench-copy-${run}-${round}`, maxWaitTimeInMs: 100 });
  const producer = kafka.producer({ idempotent: true });
  let copied = 0;
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: names.input, fromBeginning: true });
  const started = performance.now();
  await consumer.run({
    partitionsConsumedConcurrently: config.workerConcurrency,
    eachBatch: async ({ batch }) => {
      await producer.send({ topic: names.copy, messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })), acks: -1 });
      copied += batch.messages.length;
    },
  });
  try {
    return await clock(b.events, started, () => copied);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
}

async function worker(b: Bench, delivery: DeliveryMode, registry: RegistryClient, round: number): Promise<number> {
  const { names, run, config, log } = b;
  const output = delivery === 'exactly-once' ? names.exactlyOnce : names.atLeastOnce;
  const spec: WorkerSpec = {
    name: 'score-orders',
    input: names.input,
    output,
    deadLetter: names.deadLetter,
    groupId: `bench-${delivery}-${run}-${round}`,
    handler: `${PROJECT_ROOT}/consumers/workers/score-orders.ts`,
    delivery,
  };
  const topology: Topology = {
    file: `${PROJECT_ROOT}/bench/(worker bench)`,
    topics: [
      { name: names.input, partitions: PARTITIONS, replicationFactor: 1, configs: {}, valueSchema: schemaOf(names.input, 'OrderPlaced.avsc') },
      { name: output, partitions: PARTITIONS, replicationFactor: 1, configs: {}, valueSchema: schemaOf(output, 'OrderScored.avsc') },
      { name: names.deadLetter, partitions: 1, replicationFactor: 1, configs: {} },
    ],
    routes: [],
    workers: [spec],
  };
  const started = performance.now();
  const running = await startWorker({ config, logger: log, spec, topology, registry, metrics: createWorkerMetrics() });
  try {
    return await clock(b.events, started, () => running.counters.processed);
  } finally {
    await running.stop();
  }
}

/**
 * Runs the comparison against `options.brokers` and the registry at
 * `options.registryUrl`; quick mode: 100,000 events, one round; full: 200,000, three.
 */
export async function runWorkerBench(options: WorkerBenchOptions): Promise<WorkerFigures> {
  const run = options.runId;
  const b: Bench = {
    events: Number(process.env.SLUICE_BENCH_WORKER_EVENTS ?? (options.mode === 'full' ? 200_000 : 100_000)),
    run,
    kafka: new Kafka({ clientId: 'bench-worker', brokers: options.brokers, logLevel: logLevel.NOTHING }),
    config: options.config,
    log: options.logger,
    names: {
      input: `bench.placed-${run}`,
      copy: `bench.copy-${run}`,
      exactlyOnce: `bench.scored-eos-${run}`,
      atLeastOnce: `bench.scored-alo-${run}`,
      deadLetter: `bench.dlq-${run}`,
    },
  };
  // The machine may be shared and noisy: contenders run interleaved, and the median round counts.
  const rounds = Number(process.env.SLUICE_BENCH_WORKER_ROUNDS ?? (options.mode === 'full' ? 3 : 1));
  const { names } = b;
  const admin = b.kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [...[names.input, names.copy, names.exactlyOnce, names.atLeastOnce].map((topic) => ({ topic, numPartitions: PARTITIONS })), { topic: names.deadLetter, numPartitions: 1 }],
    waitForLeaders: true,
  });
  try {
    const registry = new RegistryClient(options.registryUrl);
    await fillInput(b, registry);
    const rate = (ms: number) => Math.round((b.events / ms) * 1000);
    const results: { bareCopy: number; exactlyOnce: number; atLeastOnce: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      results.push({
        bareCopy: rate(await bareCopy(b, round)),
        exactlyOnce: rate(await worker(b, 'exactly-once', registry, round)),
        atLeastOnce: rate(await worker(b, 'at-least-once', registry, round)),
      });
    }
    const median = (pick: (r: (typeof results)[number]) => number) => results.map(pick).sort((x, y) => x - y)[Math.floor(results.length / 2)]!;
    return {
      bareCopyEventsPerSec: median((r) => r.bareCopy),
      exactlyOnceEventsPerSec: median((r) => r.exactlyOnce),
      atLeastOnceEventsPerSec: median((r) => r.atLeastOnce),
      rounds: results,
      events: b.events,
      partitions: PARTITIONS,
      batchSize: b.config.workerBatchSize,
      concurrency: b.config.workerConcurrency,
    };
  } finally {
    await admin.deleteTopics({ topics: Object.values(names) }).catch((error: unknown) => b.log.warn({ err: error }, 'deleting the bench topics failed'));
    await admin.disconnect();
  }
}

/** `node bench/worker.ts [events]`: the worker comparison alone, one JSON object on stdout. */
async function main(): Promise<void> {
  if (process.argv[2]) process.env.SLUICE_BENCH_WORKER_EVENTS = process.argv[2];
  const config = loadConfig(process.env, {
    kafkaBrokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    logLevel: process.env.SLUICE_LOG_LEVEL ?? 'error',
    logFormat: 'json',
    registryTopic: `_schemas_bench_${randomUUID().slice(0, 8)}`,
  });
  // Logs to stderr: stdout carries the result.
  const logger = createLogger(config, 'bench-worker', 2);
  const server = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
  try {
    const figures = await runWorkerBench({ brokers: config.kafkaBrokers ?? ['127.0.0.1:9092'], registryUrl: server.url, runId: randomUUID().slice(0, 8), mode: 'full', config, logger });
    const ratio = (x: number | null) => (x === null || !figures.bareCopyEventsPerSec ? null : Math.round((x / figures.bareCopyEventsPerSec) * 100) / 100);
    process.stdout.write(
      `${JSON.stringify({ ...figures, ratio: { exactlyOnce: ratio(figures.exactlyOnceEventsPerSec), atLeastOnce: ratio(figures.atLeastOnceEventsPerSec) }, goal: { exactlyOnce: 0.5, atLeastOnce: 0.8 } })}\n`,
    );
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
  process.exit(0);
}
