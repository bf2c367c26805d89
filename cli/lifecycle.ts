import type { Logger } from '../core/logger.ts';

export interface Service {
  name: string;
  close(): Promise<void>;
}

/**
 * Keeps the process up until SIGINT or SIGTERM, then closes services in reverse
 * start order (workers before the ingress before the registry before Kafka), each
 * within the shutdown budget. A second signal exits at once.
 */
export function closeOnSignal(services: Service[], log: Logger, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        log.error({ timeoutMs }, 'graceful shutdown took too long; exiting');
        process.exit(1);
      }, timeoutMs);
      deadline.unref();
      let failed = false;
      for (const service of [...services].reverse()) {
        try {
          await service.close();
          log.info({ component: service.name }, 'stopped');
        } catch (error) {
          failed = true;
          log.error({ err: error, component: service.name }, 'failed to stop cleanly');
        }
      }
      clearTimeout(deadline);
      resolve(failed ? 1 : 0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
