import { Kafka, logLevel, type KafkaConfig, type LogEntry, type logCreator } from 'kafkajs';
import { bootstrapServers, type SluiceConfig } from './config.ts';
import type { Logger } from './logger.ts';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

const CONCURRENT_TRANSACTIONS = /another concurrent operation on the same transaction/;

/** Routes kafkajs's own logs into pino, one level lower than Sluice's (kafkajs is chatty at info). */
function pinoLogCreator(logger: Logger): logCreator {
  const kafkaLog = logger.child({ lib: 'kafkajs' });
  return () =>
    ({ level, label, log }: LogEntry) => {
      const { message, ...extra } = log;
      // Right after a transaction commits, the coordinator answers CONCURRENT_TRANSACTIONS until its
      // markers are written; kafkajs retries it and logs an error each time. Routine, so debug.
      const routine = CONCURRENT_TRANSACTIONS.test(message) || CONCURRENT_TRANSACTIONS.test(String(extra.error ?? ''));
      const method = routine ? 'debug' : (LEVELS[level] ?? 'info');
      kafkaLog[method === 'info' ? 'debug' : method]({ ...extra, kafkaLevel: label }, message);
    };
}

/**
 * `overrides` lets a client with a latency budget (the ingress) bound how long
 * kafkajs keeps retrying, instead of the generous defaults below.
 */
export function createKafka(config: SluiceConfig, logger: Logger, clientSuffix: string, overrides: Pick<KafkaConfig, 'connectionTimeout' | 'requestTimeout' | 'retry'> = {}): Kafka {
  return new Kafka({
    clientId: `${config.clientId}-${clientSuffix}`,
    brokers: bootstrapServers(config),
    logLevel: logLevel.INFO,
    logCreator: pinoLogCreator(logger),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5000 },
    ...overrides,
  });
}
