import autocannon from 'autocannon';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startWorker } from '../consumers/start-worker.ts';
import { announce, benchConfig, benchTopology, percentile, rawKafka, requiredEnv, round, type BenchEnv } from './common.ts';
import type { OrderPlacedInput } from '../tests/support/orders.ts';

/**
 * End-to-end latency: from the moment a POST is written to the moment its
 * scored event is visible to a read_committed consumer of the output topic.
 * Each event carries its send time in its orderId (the output's key), so no
 * bookkeeping is shared between the load generator and the consumer; both run
 * in this process, so one clock serves both.
 */

export interface E2eFigures {
  targetRate: number;
  sent: number;
  received: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number };
  /** Medians of the two legs: POST to the worker's produce (the output's timestamp), and that to visible. */
  legsP50Ms: { postToWorkerProduce: number; workerProduceToVisible: number };
  /** With `inputTopic`: per event, POST, the ingress's produce (the input's timestamp), the worker's produce and visible (epoch ms). */
  samples?: E2eSample[];
}

export interface E2eSample {
  sent: number;
  input: number;
  output: number;
  visible: number;
}

const now = (): number => performance.timeOrigin + performance.now();

export async function measureE2e(options: {
  ingressUrl: string;
  brokers: string[];
  outputTopic: string;
  ratePerSec: number;
  durationS: number;
  template: OrderPlacedInput;
  phase: string;
  /** How long to wait for the last events after the load stops. */
  drainMs?: number;
  /** Also read the input topic, for per-event samples of every leg. */
  inputTopic?: string;
}): Promise<E2eFigures> {
  const prefix = `e2e-${options.phase}-`;
  const latencies: number[] = [];
  const toProduce: number[] = [];
  const toVisible: number[] = [];
  const inputs = new Map<string, number>();
  const samples: E2eSample[] = [];
  const consumer = rawKafka(options.brokers, `bench-e2e-${options.phase}`).consumer({
    groupId: `bench-e2e-${options.phase}-${Date.now()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 50,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: options.outputTopic, fromBeginning: true });
  if (options.inputTopic) await consumer.subscribe({ topic: options.inputTopic, fromBeginning: false });
  let assigned!: () => void;
  const joined = new Promise<void>((resolve) => (assigned = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => assigned());
  await consumer.run({
    // The reader needs no offsets (a new group each run, from the beginning). kafkajs commits them by default after every
    // partition's batch, waiting for the answer before it hands over the next: a fetch that brought several partitions
    // (one transaction commits them together) gave the later ones a commit round trip late each. Alternated A/B (6
    // rounds of 15 s at 100 events/s, one ingress and worker): median p99 69.1 ms with those commits, 51.7 without.
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const t = now();
      for (const message of batch.messages) {
        const key = message.key?.toString('utf8') ?? '';
        if (!key.startsWith(prefix)) continue;
        if (batch.topic === options.inputTopic) {
          inputs.set(key, Number(message.timestamp));
          continue;
        }
        const sentAt = Number(key.slice(key.lastIndexOf('-') + 1));
        const input = inputs.get(key);
        if (input !== undefined) samples.push({ sent: sentAt, input, output: Number(message.timestamp), visible: t });
        latencies.push(t - sentAt);
        const producedAt = Number(message.timestamp);
        toProduce.push(producedAt - sentAt);
        toVisible.push(t - producedAt);
      }
    },
  });
  await joined;

  let seq = 0;
  const result = await autocannon({
    url: options.ingressUrl,
    connections: Math.max(1, Math.min(64, Math.ceil(options.ratePerSec / 200))),
    overallRate: options.ratePerSec,
    duration: options.durationS,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => {
          request.body = JSON.stringify({ ...options.template, orderId: `${prefix}${seq++}-${now().toFixed(3)}` });
          return request;
        },
      },
    ],
  });
  const sent = result['2xx'];
  const deadline = Date.now() + (options.drainMs ?? 5000);
  while (latencies.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await consumer.disconnect();
  latencies.sort((a, b) => a - b);
  const p50 = (xs: number[]): number =>
    round(
      percentile(
        xs.sort((a, b) => a - b),
        50,
      ),
    );
  return {
    legsP50Ms: { postToWorkerProduce: p50(toProduce), workerProduceToVisible: p50(toVisible) },
    ...(options.inputTopic ? { samples } : {}),
    targetRate: options.ratePerSec,
    sent,
    received: latencies.length,
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      p999: round(percentile(latencies, 99.9)),
      max: round(latencies[latencies.length - 1] ?? Number.NaN),
    },
  };
}

/** The score-orders worker of the end-to-end run, as a child process. */
async function serveWorker(): Promise<void> {
  const env = JSON.parse(requiredEnv('SLUICE_BENCH_ENV')) as BenchEnv;
  const config = benchConfig(env);
  const topology = benchTopology(env);
  const spec = topology.workers.find((w) => w.name === 'score-orders');
  if (!spec) throw new Error('the topology has no score-orders worker');
  const worker = await startWorker({ config, logger: createLogger(config, 'bench-worker', 2), spec, topology, registry: new RegistryClient(env.registryUrl) });
  announce({ worker: spec.name }, () => worker.stop());
}

if (import.meta.main) await serveWorker();
