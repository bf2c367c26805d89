import { Partitioners, type Message } from 'kafkajs';
import { announceReady, argValue, rawKafka, requiredEnv, round } from './common.ts';

/**
 * The ceiling for Node: a bare kafkajs producer sending pre-encoded records in
 * large batches, with the ingress's guarantees (idempotent, acks=all, one send
 * in flight) and none of its work (no HTTP, parsing, validation or encoding).
 *
 * Run as a child by bench/run.ts: reads the records ("key base64-value", one a
 * line) from SLUICE_BENCH_RECORDS_FILE and announces its figures when done.
 */

export interface BareProducerFigures {
  eventsPerSec: number;
  batches: number;
  batchRecords: number;
  sendLatencyMs: { p50: number; p99: number };
}

async function main(): Promise<void> {
  const brokers = requiredEnv('SLUICE_BENCH_BROKERS').split(',');
  const topic = requiredEnv('SLUICE_BENCH_TOPIC');
  const { readFileSync } = await import('node:fs');
  const records = readFileSync(requiredEnv('SLUICE_BENCH_RECORDS_FILE'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [key, value] = line.split(' ');
      return { key: key!, value: Buffer.from(value!, 'base64') };
    });
  const durationS = Number(argValue(process.argv, '--duration') ?? '5');
  const batchRecords = Number(argValue(process.argv, '--batch') ?? '2000');

  const producer = rawKafka(brokers, 'bench-bare').producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const batches: Message[][] = [];
  for (let start = 0; start < records.length; start += batchRecords) {
    const slice: Message[] = [];
    for (let i = 0; i < batchRecords; i++) slice.push(records[(start + i) % records.length]!);
    batches.push(slice);
  }
  // One warm-up send: the first one also fetches metadata and the producer id.
  await producer.send({ topic, acks: -1, messages: batches[0]! });

  const latencies: number[] = [];
  let sent = 0;
  let b = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  while (performance.now() < deadline) {
    const t = performance.now();
    const messages = batches[b++ % batches.length]!;
    await producer.send({ topic, acks: -1, messages });
    latencies.push(performance.now() - t);
    sent += messages.length;
  }
  const elapsed = (performance.now() - started) / 1000;
  await producer.disconnect();
  latencies.sort((x, y) => x - y);
  const at = (p: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN);
  const figures: BareProducerFigures = {
    eventsPerSec: round(sent / elapsed, 0),
    batches: latencies.length,
    batchRecords,
    sendLatencyMs: { p50: at(0.5), p99: at(0.99) },
  };
  announceReady(figures);
}

if (import.meta.main) await main();
