import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from '../../broker/broker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
  }
}

/**
 * Integration tests talk to a real broker: the cluster in KAFKA_BROKERS, or a
 * fresh local one on its own ports and data dir (so a running `npm start` is
 * left alone), started with the same code as `npm run kafka:up`.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const config = loadConfig(process.env, {
    kafkaPort: process.env.SLUICE_TEST_KAFKA_PORT ?? '19092',
    kafkaControllerPort: process.env.SLUICE_TEST_KAFKA_CONTROLLER_PORT ?? '19093',
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
  return async () => {
    await stopLocalKafka(options.dataDir, log);
    rmSync(join(options.dataDir, 'logs'), { recursive: true, force: true });
  };
}
