import { readFileSync } from 'node:fs';
import { announceReady, argValue, requiredEnv, round } from './common.ts';

/**
 * What the bare producer contenders share: the same pre-encoded records ("key
 * base64-value", one a line, from SLUICE_BENCH_RECORDS_FILE) in batches of
 * `--batch`, one warm-up send, then `lanes` loops each keeping one send
 * outstanding for `--duration` seconds. Each contender only says how to build
 * its client's message and send a batch. Run as children by bench/run.ts.
 */

export interface BareProducerFigures {
  eventsPerSec: number;
  batches: number;
  batchRecords: number;
  sendLatencyMs: { p50: number; p99: number };
}

export interface BareClient<M> {
  message(key: string, value: Buffer): M;
  send(messages: M[]): Promise<unknown>;
  close(): Promise<void>;
}

export async function runBareProducer<M>(connect: (brokers: string[], topic: string) => Promise<BareClient<M>>, lanes: number): Promise<void> {
  const brokers = requiredEnv('SLUICE_BENCH_BROKERS').split(',');
  const topic = requiredEnv('SLUICE_BENCH_TOPIC');
  const durationS = Number(argValue(process.argv, '--duration') ?? '5');
  const batchRecords = Number(argValue(process.argv, '--batch') ?? '2000');
  const client = await connect(brokers, topic);
  const records = readFileSync(requiredEnv('SLUICE_BENCH_RECORDS_FILE'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [key, value] = line.split(' ');
      return client.message(key!, Buffer.from(value!, 'base64'));
    });
  const batches: M[][] = [];
  for (let start = 0; start < records.length; start += batchRecords) {
    const slice: M[] = [];
    for (let i = 0; i < batchRecords; i++) slice.push(records[(start + i) % records.length]!);
    batches.push(slice);
  }
  // One warm-up send: the first one also fetches metadata and the producer id.
  await client.send(batches[0]!);

  const latencies: number[] = [];
  let sent = 0;
  let b = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const messages = batches[b++ % batches.length]!;
      await client.send(messages);
      latencies.push(performance.now() - t);
      sent += messages.length;
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  const elapsed = (performance.now() - started) / 1000;
  await client.close();
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
