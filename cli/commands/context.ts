import type { Command } from 'commander';
import type { SluiceConfig } from '../../core/config.ts';
import { createKafka, type Kafka, type KafkaAdmin } from '../../kafka/index.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { configFrom } from '../flags.ts';

/**
 * What the topology and schemas commands share: config, a logger on stderr
 * (stdout carries the command's output, e.g. --json), and Kafka/registry clients.
 */

export interface CommandContext {
  config: SluiceConfig;
  log: Logger;
  registry: RegistryClient;
}

export function commandContext(command: Command): CommandContext {
  const explicitLevel = command.optsWithGlobals<{ logLevel?: string }>().logLevel;
  // A report command keeps quiet below warnings unless asked (--log-level / SLUICE_LOG_LEVEL).
  const config = configFrom(command, explicitLevel === undefined ? { logLevel: 'warn' } : {});
  return { config, log: createLogger(config, 'sluice', 2), registry: new RegistryClient(config.registryUrl) };
}

export async function withKafkaAdmin<T>(ctx: CommandContext, fn: (kafka: Kafka, admin: KafkaAdmin) => Promise<T>): Promise<T> {
  const kafka = createKafka(ctx.config, ctx.log, 'cli');
  const admin = kafka.admin();
  try {
    return await fn(kafka, admin);
  } finally {
    await admin.close();
  }
}

export function write(text: string): void {
  process.stdout.write(text);
}
