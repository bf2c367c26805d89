import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Schema } from 'avsc';
import { Kafka, logLevel } from 'kafkajs';
import { createTypes } from '../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT, type SluiceConfig } from '../core/config.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { createEncoder } from '../core/serde.ts';
import { createWorkerMetrics } from '../consumers/metrics.ts';
import { startWorker } from '../consumers/start-worker.ts';
import { createKafka, type OutgoingRecord } from '../kafka/index.ts';
import { startRegistry } from '../registry/server.ts';
import { median } from './common.ts';
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

const PARTITIONS = 6;

/** What the worker bench reports (events/s of each contender, measured in one run). */
export interface WorkerFigures {
  atLeastOnceEventsPerSec: number | null;
  exactlyOnceEventsPerSec: number | null;
  bareCopyEventsPerSec: number | null;
  /** Each round's figures (the medians above are over them). */
  rounds?: readonly object[];
  [detail: string]: unknown;
}

export interface WorkerBenchOptions {
  brokers: string[];
  registryUrl: string;
  runId: string;
  mode: 'quick' | 'full';
  config: SluiceConfig;
  logger: Logger;
  /** Replicas of the bench topics (min.insync.replicas one less, at least 1); default: the broker's default. */
  replicationFactor?: number;
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
  const { names } = b;
  const placed = schemaOf(names.input, 'OrderPlaced.avsc');
  const encoder = createEncoder(placed.subject, await registry.register(placed.subject, placed.text), createTypes(placed.schema));
  const producer = createKafka(b.config, b.log, 'bench-worker').producer();
  try {
    for (let i = 0; i < b.events; i += 5000) {
      const records: OutgoingRecord[] = Array.from({ length: Math.min(5000, b.events - i) }, () => {
        const order = randomOrder();
        return { topic: names.input, key: Buffer.from(order.orderId), value: encoder.encode(order) };
      });
      await producer.send(records);
    }
  } finally {
    await producer.close();
  }
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

/** A contender's run: its time, and the CPU this process spent (user + system) per event while it ran. */
interface Timed {
  ms: number;
  cpuMicrosPerEvent: number;
}

/**
 * Times `run` and the CPU of this process meanwhile: the contender (worker or
 * kafkajs copy) runs in it, beside an idle registry, so on a shared machine CPU
 * per event is steadier than events/s.
 */
async function timed(events: number, run: () => Promise<number>): Promise<Timed> {
  const before = process.cpuUsage();
  const ms = await run();
  const cpu = process.cpuUsage(before);
  return { ms, cpuMicrosPerEvent: Math.round((cpu.user + cpu.system) / events) };
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

/**
 * TCP connections this process holds to `port` (the broker): its socket file
 * descriptors matched against the kernel's TCP table. Linux only; null elsewhere.
 */
export function brokerConnections(port: number): number | null {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync('/proc/self/fd')) {
      const target = (() => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match) inodes.add(match[1]!);
    }
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    let count = 0;
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        // remote address, state 01 = ESTABLISHED, inode
        if (fields.length > 9 && fields[2]!.endsWith(`:${hexPort}`) && fields[3] === '01' && inodes.has(fields[9]!)) count++;
      }
    }
    return count;
  } catch {
    return null;
  }
}

async function worker(b: Bench, delivery: DeliveryMode, registry: RegistryClient, round: number, partitions = PARTITIONS, input = b.names.input, sample?: (running: boolean) => void): Promise<number> {
  const { names, run, config, log } = b;
  const output = delivery === 'exactly-once' ? names.exactlyOnce : names.atLeastOnce;
  const spec: WorkerSpec = {
    name: 'score-orders',
    input,
    output,
    deadLetter: names.deadLetter,
    groupId: `bench-${delivery}-${run}-${round}-${partitions}`,
    handler: `${PROJECT_ROOT}/consumers/workers/score-orders.ts`,
    delivery,
  };
  const topology: Topology = {
    file: `${PROJECT_ROOT}/bench/(worker bench)`,
    topics: [
      { name: input, partitions, replicationFactor: 1, configs: {}, valueSchema: schemaOf(input, 'OrderPlaced.avsc') },
      { name: output, partitions: PARTITIONS, replicationFactor: 1, configs: {}, valueSchema: schemaOf(output, 'OrderScored.avsc') },
      { name: names.deadLetter, partitions: 1, replicationFactor: 1, configs: {} },
    ],
    routes: [],
    workers: [spec],
  };
  const started = performance.now();
  const running = await startWorker({ config, logger: log, spec, topology, registry, metrics: createWorkerMetrics() });
  try {
    return await clock(b.events, started, () => {
      sample?.(true);
      return running.counters.processed;
    });
  } finally {
    await running.stop();
  }
}

export interface WorkerScaleFigures {
  events: number;
  /**
   * Exactly-once worker events/s (the median of the rounds), its CPU per event (the median) and the broker connections
   * it held (the most seen in any round), by input partition count, and each round's events/s.
   */
  byPartitions: { partitions: number; exactlyOnceEventsPerSec: number; cpuMicrosPerEvent: number; connections: number | null; rounds: number[] }[];
}

/** Rounds of a worker comparison, in either mode (SLUICE_BENCH_WORKER_ROUNDS): the contenders alternate within each and the median counts. */
function workerRounds(): number {
  return Number(process.env.SLUICE_BENCH_WORKER_ROUNDS ?? 3);
}

/**
 * The cost of partitions: the exactly-once worker (one instance) on inputs of
 * 6 and of 48 partitions, events/s and the broker connections it holds. Before
 * KIP-447 (kafkajs, a transactional producer per input partition) 48 partitions
 * took 57 connections against 15 at 6. The partition counts alternate within each
 * round (a new group each run reads the same input again): one run of each had
 * made the 48 ÷ 6 ratio a single sample (2026-12-07: 0.76, its 6-partition run
 * 61,062/s against 46,615-50,073 in the runs before).
 */
export async function runWorkerScaleBench(options: WorkerBenchOptions, partitionCounts: number[] = [6, 48]): Promise<WorkerScaleFigures> {
  const run = options.runId;
  const b: Bench = {
    events: Number(process.env.SLUICE_BENCH_WORKER_EVENTS ?? (options.mode === 'full' ? 200_000 : 100_000)),
    run,
    kafka: new Kafka({ clientId: 'bench-worker-scale', brokers: options.brokers, logLevel: logLevel.NOTHING }),
    config: options.config,
    log: options.logger,
    names: { input: '', copy: '', exactlyOnce: `bench.scale-eos-${run}`, atLeastOnce: '', deadLetter: `bench.scale-dlq-${run}` },
  };
  const port = Number(options.brokers[0]!.split(':').pop());
  const admin = createKafka(b.config, b.log, 'bench-worker').admin();
  const inputs = partitionCounts.map((partitions) => ({ partitions, topic: `bench.scale-placed-${partitions}-${run}` }));
  await admin.createTopics([
    ...inputs.map(({ topic, partitions }) => ({ name: topic, partitions })),
    { name: b.names.exactlyOnce, partitions: PARTITIONS },
    { name: b.names.deadLetter, partitions: 1 },
  ]);
  try {
    const registry = new RegistryClient(options.registryUrl);
    for (const { topic } of inputs) await fillInput({ ...b, names: { ...b.names, input: topic } }, registry);
    const runs = new Map(partitionCounts.map((partitions) => [partitions, { rates: [] as number[], cpu: [] as number[], connections: null as number | null }]));
    for (let round = 0; round < workerRounds(); round++) {
      for (const { partitions, topic } of inputs) {
        const baseline = brokerConnections(port);
        let most = 0;
        let sampledAt = 0;
        const { ms, cpuMicrosPerEvent } = await timed(b.events, () =>
          worker(b, 'exactly-once', registry, round, partitions, topic, () => {
            // Reading /proc's TCP table on every 2 ms tick took 6% of this process's CPU: 10 samples a second are plenty.
            if (performance.now() - sampledAt < 100) return;
            sampledAt = performance.now();
            most = Math.max(most, brokerConnections(port) ?? 0);
          }),
        );
        const figures = runs.get(partitions)!;
        figures.rates.push(Math.round((b.events / ms) * 1000));
        figures.cpu.push(cpuMicrosPerEvent);
        if (baseline !== null) figures.connections = Math.max(figures.connections ?? 0, most - baseline);
      }
    }
    const byPartitions = [...runs].map(([partitions, { rates, cpu, connections }]) => ({
      partitions,
      exactlyOnceEventsPerSec: median(rates),
      cpuMicrosPerEvent: median(cpu),
      connections,
      rounds: rates,
    }));
    return { events: b.events, byPartitions };
  } finally {
    await admin.deleteTopics([...inputs.map((i) => i.topic), b.names.exactlyOnce, b.names.deadLetter]).catch((error: unknown) => b.log.warn({ err: error }, 'deleting the bench topics failed'));
    await admin.close();
  }
}

/**
 * Runs the comparison against `options.brokers` and the registry at
 * `options.registryUrl`; quick mode: 100,000 events, full: 200,000; three rounds (workerRounds).
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
  const rounds = workerRounds();
  const { names } = b;
  const admin = createKafka(b.config, b.log, 'bench-worker').admin();
  const factor = options.replicationFactor;
  const replication = factor === undefined ? {} : { replicationFactor: factor, configs: { 'min.insync.replicas': String(Math.max(1, factor - 1)) } };
  await admin.createTopics([
    ...[names.input, names.copy, names.exactlyOnce, names.atLeastOnce].map((name) => ({ name, partitions: PARTITIONS, ...replication })),
    { name: names.deadLetter, partitions: 1, ...replication },
  ]);
  try {
    const registry = new RegistryClient(options.registryUrl);
    await fillInput(b, registry);
    const rate = (ms: number) => Math.round((b.events / ms) * 1000);
    const results: { bareCopy: number; exactlyOnce: number; atLeastOnce: number; cpuMicrosPerEvent: { bareCopy: number; exactlyOnce: number; atLeastOnce: number } }[] = [];
    for (let round = 0; round < rounds; round++) {
      const copy = await timed(b.events, () => bareCopy(b, round));
      const exactlyOnce = await timed(b.events, () => worker(b, 'exactly-once', registry, round));
      const atLeastOnce = await timed(b.events, () => worker(b, 'at-least-once', registry, round));
      results.push({
        bareCopy: rate(copy.ms),
        exactlyOnce: rate(exactlyOnce.ms),
        atLeastOnce: rate(atLeastOnce.ms),
        cpuMicrosPerEvent: { bareCopy: copy.cpuMicrosPerEvent, exactlyOnce: exactlyOnce.cpuMicrosPerEvent, atLeastOnce: atLeastOnce.cpuMicrosPerEvent },
      });
    }
    const medianOf = (pick: (r: (typeof results)[number]) => number) => median(results.map(pick));
    return {
      bareCopyEventsPerSec: medianOf((r) => r.bareCopy),
      exactlyOnceEventsPerSec: medianOf((r) => r.exactlyOnce),
      atLeastOnceEventsPerSec: medianOf((r) => r.atLeastOnce),
      rounds: results,
      events: b.events,
      partitions: PARTITIONS,
      batchSize: b.config.workerBatchSize,
      concurrency: b.config.workerConcurrency,
    };
  } finally {
    await admin.deleteTopics(Object.values(names)).catch((error: unknown) => b.log.warn({ err: error }, 'deleting the bench topics failed'));
    await admin.close();
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
    const benchOptions: WorkerBenchOptions = { brokers: config.kafkaBrokers ?? ['127.0.0.1:9092'], registryUrl: server.url, runId: randomUUID().slice(0, 8), mode: 'full', config, logger };
    const figures = await runWorkerBench(benchOptions);
    const scale = await runWorkerScaleBench({ ...benchOptions, runId: randomUUID().slice(0, 8) });
    const ratio = (x: number | null) => (x === null || !figures.bareCopyEventsPerSec ? null : Math.round((x / figures.bareCopyEventsPerSec) * 100) / 100);
    process.stdout.write(
      `${JSON.stringify({ ...figures, ratio: { exactlyOnce: ratio(figures.exactlyOnceEventsPerSec), atLeastOnce: ratio(figures.atLeastOnceEventsPerSec) }, goal: { exactlyOnce: 0.8, atLeastOnce: 0.8 }, scale })}\n`,
    );
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
  process.exit(0);
}
