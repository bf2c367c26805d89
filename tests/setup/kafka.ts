import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from '../../broker/broker.ts';
import type { SaslMechanism } from '../../broker/properties.ts';
import { freePort } from '../support/processes.ts';

/** How a test reaches the test broker's SASL_SSL listener. */
export interface KafkaSecureContext {
  brokers: string[];
  /** CA certificate (PEM) to verify the broker with. */
  caFile: string;
  /** The mechanism to use by default; every one of `mechanisms` works with the same user. */
  mechanism: SaslMechanism;
  mechanisms: readonly SaslMechanism[];
  username: string;
  password: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    /** Absent when the tests run against KAFKA_BROKERS. */
    kafkaSecure?: KafkaSecureContext;
  }
}

/**
 * Integration tests talk to a real broker: the cluster in KAFKA_BROKERS, or a
 * fresh local one on its own ports and data dir (so a running `npm start` is
 * left alone), started with the same code as `sluice kafka up`. The local one
 * always has a SASL_SSL listener too (SLUICE_TEST_KAFKA_SASL_SSL_PORT, or a
 * free port): the same process serves both, for the secured-client tests.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const config = loadConfig(process.env, {
    kafkaPort: process.env.SLUICE_TEST_KAFKA_PORT ?? '19092',
    kafkaControllerPort: process.env.SLUICE_TEST_KAFKA_CONTROLLER_PORT ?? '19093',
    kafkaSaslSslPort: process.env.SLUICE_TEST_KAFKA_SASL_SSL_PORT ?? String(await freePort()),
    logLevel: 'warn',
  });
  if (config.kafkaBrokers) {
    project.provide('kafkaBrokers', config.kafkaBrokers);
    return undefined;
  }
  const log = createLogger(config, 'test-kafka');
  const options = localKafkaOptions(config, 'test-kafka');
  await stopLocalKafka(options.dataDir, log);
  rmSync(options.dataDir, { recursive: true, force: true });
  const kafka = await startLocalKafka(options, log);
  project.provide('kafkaBrokers', kafka.brokers);
  if (kafka.secure) project.provide('kafkaSecure', { ...kafka.secure, mechanism: 'SCRAM-SHA-512' });
  return async () => {
    await stopLocalKafka(options.dataDir, log);
    rmSync(join(options.dataDir, 'logs'), { recursive: true, force: true });
  };
}
