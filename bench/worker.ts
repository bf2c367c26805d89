import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Schema } from 'avsc';
import { Kafka, logLevel, type Message } from 'kafkajs';
import { createTypes } from '../core/avro.ts';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { createEncoder } from '../core/serde.ts';
import { createWorkerMetrics } from '../consumers/metrics.ts';
import { startWorker } from '../consumers/runtime.ts';
import { startRegistry } from '../registry/server.ts';
import { subjectFor, type DeliveryMode, type Topology, type WorkerSpec } from '../topology/model.ts';
import { randomOrder } from '../tests/support/orders.ts';

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

const EVENTS = Number(process.argv[2] ?? process.env.SLUICE_BENCH_WORKER_EVENTS ?? 50_000);
const PARTITIONS = 6;
/** The machine is shared and noisy: contenders run interleaved, several rounds, and the median counts. */
const ROUNDS = Number(process.env.SLUICE_BENCH_WORKER_ROUNDS ?? 3);

const config = loadConfig(process.env, {
  kafkaBrokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  logLevel: process.env.SLUICE_LOG_LEVEL ?? 'error',
  logFormat: 'json',
  registryTopic: `_schemas_bench_${randomUUID().slice(0, 8)}`,
});
// Logs to stderr: stdout carries the result.
const log = createLogger(config, 'bench-worker', 2);
const brokers = config.kafkaBrokers ?? ['127.0.0.1:9092'];
const kafka = new Kafka({ clientId: 'bench-worker', brokers, logLevel: logLevel.NOTHING });
const run = randomUUID().slice(0, 8);
const names = {
  input: `bench.placed-${run}`,
  copy: `bench.copy-${run}`,
  exactlyOnce: `bench.scored-eos-${run}`,
  atLeastOnce: `bench.scored-alo-${run}`,
  deadLetter: `bench.dlq-${run}`,
};

function schemaOf(topic: string, file: string) {
  const schema = JSON.parse(readFileSync(`${PROJECT_ROOT}/schemas/${file}`, 'utf8')) as Schema;
  return { file, subject: subjectFor(topic), schema, text: JSON.stringify(schema) };
}

async function fillInput(registry: RegistryClient): Promise<void> {
  const placed = schemaOf(names.input, 'OrderPlaced.avsc');
  const encoder = createEncoder(placed.subject, await registry.register(placed.subject, placed.text), createTypes(placed.schema));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  for (let i = 0; i < EVENTS; i += 5000) {
    const messages: Message[] = Array.from({ length: Math.min(5000, EVENTS - i) }, () => {
      const order = randomOrder();
      return { key: order.orderId, value: encoder.encode(order) };
    });
    await producer.send({ topic: names.input, messages, acks: -1 });
  }
  await producer.disconnect();
}

/** Time from the first record seen to the last, given a way to read progress. */
async function clock(progress: () => number, timeoutMs = 300_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (progress() === 0) {
    if (Date.now() > deadline) throw new Error('no record processed');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const started = performance.now();
  while (progress() < EVENTS) {
    if (Date.now() > deadline) throw new Error(`only ${progress()} of ${EVENTS} processed`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - started;
}

async function bareCopy(round: number): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-copy-${run}-${round}`, maxWaitTimeInMs: 100 });
  const producer = kafka.producer({ idempotent: true });
  let copied = 0;
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: names.input, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: config.workerConcurrency,
    eachBatch: async ({ batch }) => {
      await producer.send({ topic: names.copy, messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })), acks: -1 });
      copied += batch.messages.length;
    },
  });
  try {
    return await clock(() => copied);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
}

async function worker(delivery: DeliveryMode, registry: RegistryClient, round: number): Promise<number> {
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
  const running = await startWorker({ config, logger: log, spec, topology, registry, metrics: createWorkerMetrics() });
  try {
    return await clock(() => running.counters.processed);
  } finally {
    await running.stop();
  }
}

async function main(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      ...[names.input, names.copy, names.exactlyOnce, names.atLeastOnce].map((topic) => ({ topic, numPartitions: PARTITIONS })),
      { topic: names.deadLetter, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  const server = await startRegistry({ config, logger: log, port: 0, topic: config.registryTopic });
  try {
    const registry = new RegistryClient(server.url);
    await fillInput(registry);
    const rate = (ms: number) => Math.round((EVENTS / ms) * 1000);
    const rounds: { bareCopy: number; exactlyOnce: number; atLeastOnce: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      rounds.push({
        bareCopy: rate(await bareCopy(round)),
        exactlyOnce: rate(await worker('exactly-once', registry, round)),
        atLeastOnce: rate(await worker('at-least-once', registry, round)),
      });
    }
    const median = (pick: (r: (typeof rounds)[number]) => number) => rounds.map(pick).sort((a, b) => a - b)[Math.floor(rounds.length / 2)]!;
    const [bare, exactlyOnce, atLeastOnce] = [median((r) => r.bareCopy), median((r) => r.exactlyOnce), median((r) => r.atLeastOnce)];
    const result = {
      rounds,
      events: EVENTS,
      partitions: PARTITIONS,
      batchSize: config.workerBatchSize,
      concurrency: config.workerConcurrency,
      eventsPerSec: { bareCopy: bare, exactlyOnce, atLeastOnce },
      ratio: { exactlyOnce: Math.round((exactlyOnce / bare) * 100) / 100, atLeastOnce: Math.round((atLeastOnce / bare) * 100) / 100 },
      goal: { exactlyOnce: 0.5, atLeastOnce: 0.8 },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await server.close();
    await admin.deleteTopics({ topics: Object.values(names) }).catch((error: unknown) => log.warn({ err: error }, 'deleting the bench topics failed'));
    await admin.disconnect();
  }
}

await main();
process.exit(0);
