import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { SluiceConfig } from './config.ts';

export type { Logger } from 'pino';

/**
 * One root logger per process. Every line carries the service and instance so
 * logs from `npm start` (several services in one process) stay attributable.
 */
export function createLogger(
  config: Pick<SluiceConfig, 'logLevel' | 'logFormat' | 'instanceId'>,
  service: string,
  // A CLI command whose stdout is its output (e.g. --json) logs to stderr (fd 2).
  fd: 1 | 2 = 1,
): Logger {
  const stream = fd === 1 ? process.stdout : process.stderr;
  const usePretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && stream.isTTY === true);
  const options = {
    level: config.logLevel,
    base: { service, instance: config.instanceId ?? `${hostname()}-${process.pid}` },
    serializers: { err: pino.stdSerializers.err },
  };
  if (usePretty) {
    // Loaded only for a terminal: a command whose logs go to a pipe (`sluice tail … | …`, services) never needs it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(
      options,
      pretty({
        sync: true,
        destination: fd,
        singleLine: true,
        translateTime: 'HH:MM:ss.l',
        messageFormat: '{if component}[{component}] {end}{msg}',
        ignore: 'pid,hostname,instance,service,component,lib,logger,kafkaLevel,timestamp',
      }),
    );
  }
  return fd === 1 ? pino(options) : pino(options, pino.destination({ fd, sync: true }));
}
