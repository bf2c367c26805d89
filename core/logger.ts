import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { SluiceConfig } from './config.ts';

export type { Logger } from 'pino';

/**
 * One root logger per process. Every line carries the service and instance so
 * logs from `npm start` (several services in one process) stay attributable.
 */
export function createLogger(config: Pick<SluiceConfig, 'logLevel' | 'logFormat' | 'instanceId'>, service: string): Logger {
  const usePretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  const options = {
    level: config.logLevel,
    base: { service, instance: config.instanceId ?? `${hostname()}-${process.pid}` },
    serializers: { err: pino.stdSerializers.err },
  };
  if (usePretty) {
    return pino(options, pretty({ sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,instance' }));
  }
  return pino(options);
}
