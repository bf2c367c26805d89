import { compatibilityPartitioner, ProduceAcks, Producer, type MessageToProduce } from '@platformatic/kafka';
import type { BareProducerFigures } from './bare-producer.ts';
import { announceReady, argValue, requiredEnv, round } from './common.ts';

/**
 * The new Node ceiling: a bare @platformatic/kafka producer, as a user would
 * write it, sending the same pre-encoded records in large batches with the
 * ingress's guarantees (idempotent, acks=all) and none of its work. Unlike
 * kafkajs it may keep several idempotent sends in flight: `--inflight` sends
 * (default 4) are kept outstanding, as the ingress keeps up to 5.
 *
 * Run as a child by bench/run.ts, like bare-producer.ts.
 */

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

async function main(): Promise<void> {
  const brokers = requiredEnv('SLUICE_BENCH_BROKERS').split(',');
  const topic = requiredEnv('SLUICE_BENCH_TOPIC');
  const { readFileSync } = await import('node:fs');
  const records = readFileSync(requiredEnv('SLUICE_BENCH_RECORDS_FILE'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [key, value] = line.split(' ');
      return { topic, key: Buffer.from(key!), value: Buffer.from(value!, 'base64') };
    });
  const durationS = Number(argValue(process.argv, '--duration') ?? '5');
  const batchRecords = Number(argValue(process.argv, '--batch') ?? '2000');
  const inflight = Number(argValue(process.argv, '--inflight') ?? '4');

  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'bench-bare-platformatic',
    bootstrapBrokers: brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    partitioner: compatibilityPartitioner,
  });
  const batches: Message[][] = [];
  for (let start = 0; start < records.length; start += batchRecords) {
    const slice: Message[] = [];
    for (let i = 0; i < batchRecords; i++) slice.push(records[(start + i) % records.length]!);
    batches.push(slice);
  }
  // One warm-up send: the first one also fetches metadata and the producer id.
  await producer.send({ messages: batches[0]! });

  const latencies: number[] = [];
  let sent = 0;
  let b = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const messages = batches[b++ % batches.length]!;
      await producer.send({ messages });
      latencies.push(performance.now() - t);
      sent += messages.length;
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const elapsed = (performance.now() - started) / 1000;
  await producer.close();
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
