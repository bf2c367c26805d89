import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Kafka, logLevel, type Admin, type ITopicConfig } from 'kafkajs';
import { loadConfig, type OPTIONS, type SluiceConfig } from '../../core/config.ts';
import { createLogger, type Logger } from '../../core/logger.ts';

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
    logLevel: process.env.SLUICE_TEST_LOG_LEVEL ?? 'warn',
    logFormat: 'json',
    registryTopic: uniqueName('_schemas_test'),
    ...overrides,
  });
}

export function testLogger(config: SluiceConfig, service = 'test'): Logger {
  return createLogger(config, service);
}

/** A plain kafkajs client, independent of Sluice's own, for checking what is on topics. */
export function rawKafka(clientId = 'sluice-test'): Kafka {
  return new Kafka({ clientId, brokers: brokers(), logLevel: logLevel.ERROR });
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = rawKafka('sluice-test-admin').admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopics(topics: ITopicConfig[]): Promise<void> {
  await withAdmin((admin) => admin.createTopics({ topics, waitForLeaders: true }));
}
