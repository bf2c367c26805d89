import { randomUUID } from 'node:crypto';
import { inject, onTestFailed } from 'vitest';
import { pino } from 'pino';
import { loadConfig, type OPTIONS, type SluiceConfig } from '../../core/config.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { createKafka, type Kafka as SeamKafka, type KafkaAdmin, type KafkaRecord, type TopicSpec } from '../../kafka/index.ts';

/** Shared plumbing for integration tests: config, names and a raw Kafka client. */

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function brokers(): string[] {
  return inject('kafkaBrokers');
}

export function testConfig(overrides: Partial<Record<keyof typeof OPTIONS, string>> = {}): SluiceConfig {
  return loadConfig(process.env, {
    kafkaBrokers: brokers().join(','),
    // Silent: a test run prints results, not logs (SLUICE_TEST_LOG_LEVEL=debug to see them).
    logLevel: process.env.SLUICE_TEST_LOG_LEVEL ?? 'silent',
    logFormat: 'json',
    registryTopic: uniqueName('_schemas_test'),
    ...overrides,
  });
}

export function testLogger(config: SluiceConfig, service = 'test'): Logger {
  return createLogger(config, service);
}

/** The seam, for tests that check what is on topics or set topics up. Logs nothing. */
export function seam(name = 'sluice-test'): SeamKafka {
  return createKafka(testConfig({ logLevel: 'silent' }), pino({ level: 'silent' }), name);
}

export async function withKafkaAdmin<T>(fn: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
  const admin = seam().admin();
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/** Creates topics and waits until every partition has a leader. */
export async function createTestTopics(topics: TopicSpec[]): Promise<void> {
  await withKafkaAdmin((admin) => admin.createTopics(topics));
}

/** Every record on `topics` up to their current ends (read_committed unless told otherwise). */
export async function readTopics(topics: string[], options: { readCommitted?: boolean } = {}): Promise<KafkaRecord[]> {
  const reader = seam().partitionReader({ maxWaitMs: 100, ...options });
  try {
    return await reader.readToEnd(topics);
  } finally {
    await reader.close();
  }
}

/**
 * The older kafkajs-shaped way to create topics (tests/support/workers.ts and the
 * worker tests still call it); goes through the seam.
 */
export async function createTopics(topics: { topic: string; numPartitions?: number; replicationFactor?: number; configEntries?: { name: string; value: string }[] }[]): Promise<void> {
  await createTestTopics(
    topics.map((t) => ({
      name: t.topic,
      partitions: t.numPartitions ?? 1,
      ...(t.replicationFactor === undefined ? {} : { replicationFactor: t.replicationFactor }),
      configs: Object.fromEntries((t.configEntries ?? []).map((c) => [c.name, c.value])),
    })),
  );
}

/**
 * A logger for a test that must stay quiet when it passes and explain itself when it fails: it keeps its last
 * `keep` lines (JSON, at `level`) and writes them to stderr, with whatever `state()` reports then, if the test it
 * was armed in fails. `arm()` is called inside the test (vitest ties the hook to the running test).
 */
export function failureLog(service: string, level = 'info', keep = 4000): { logger: Logger; arm(state?: () => unknown): void } {
  // A ring: the oldest line is overwritten in place (dropping it from an array's front moved every line kept, per line).
  const lines: string[] = [];
  let written = 0;
  const logger = pino({ level, base: { service } }, { write: (line: string) => void (lines[written++ % keep] = line) });
  return {
    logger,
    arm(state) {
      onTestFailed(() => {
        const start = written % keep;
        const last = written > keep ? [...lines.slice(start), ...lines.slice(0, start)] : lines;
        process.stderr.write(`--- ${service}: the last ${last.length} log lines ---\n${last.join('')}`);
        if (state) process.stderr.write(`--- ${service}: state at failure ---\n${JSON.stringify(state(), null, 1)}\n`);
      });
    },
  };
}
