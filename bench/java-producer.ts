import { spawn } from 'node:child_process';
import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { ensureKafkaJars, localKafkaOptions } from '../broker/broker.ts';
import { round } from './common.ts';

/**
 * The broker's ceiling: Kafka's own org.apache.kafka.tools.ProducerPerformance
 * (from the kafka-tools jar the local broker is resolved with), records of the
 * same size as Sluice's encoded events, acks=all and idempotence as the ingress.
 */

export interface JavaProducerFigures {
  eventsPerSec: number;
  mbPerSec: number;
  latencyMs: { avg: number; p50: number; p99: number; p999: number };
  records: number;
  recordBytes: number;
}

// "300000 records sent, 95877.8 records/sec (19.02 MB/sec), 312.04 ms avg latency, 624.00 ms max latency, 301 ms 50th, 587 ms 95th, 612 ms 99th, 621 ms 99.9th."
const SUMMARY = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th/;

export function parseProducerPerformance(output: string): Omit<JavaProducerFigures, 'recordBytes'> {
  const lines = output.trim().split('\n');
  const last = [...lines].reverse().find((l) => SUMMARY.test(l));
  const m = last ? SUMMARY.exec(last) : null;
  if (!m) throw new Error(`ProducerPerformance printed no summary:\n${output.slice(-2000)}`);
  return {
    records: Number(m[1]),
    eventsPerSec: round(Number(m[2]), 0),
    mbPerSec: Number(m[3]),
    latencyMs: { avg: Number(m[4]), p50: Number(m[5]), p99: Number(m[6]), p999: Number(m[7]) },
  };
}

export async function runJavaProducer(config: SluiceConfig, log: Logger, options: { brokers: string[]; topic: string; records: number; recordBytes: number }): Promise<JavaProducerFigures> {
  const libs = ensureKafkaJars(localKafkaOptions(config), log);
  const args = [
    '-Xmx512m',
    '-Dlog4j.configuration=file:/dev/null',
    '-cp',
    `${libs}/*`,
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic',
    options.topic,
    '--num-records',
    String(options.records),
    '--record-size',
    String(options.recordBytes),
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${options.brokers.join(',')}`,
    'acks=all',
    'enable.idempotence=true',
    'linger.ms=5',
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`ProducerPerformance exited with ${code}:\n${out.slice(-2000)}`))));
  });
  return { ...parseProducerPerformance(output), recordBytes: options.recordBytes };
}
