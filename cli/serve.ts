import type { SluiceConfig } from '../core/config.ts';
import { tuneServiceHeap } from '../core/heap.ts';
import type { Logger } from '../core/logger.ts';
import { startTracing } from '../core/tracing.ts';
import { Lifecycle, type Service } from './lifecycle.ts';

/**
 * Starts services in order under one Lifecycle, which owns the signals from the first
 * step on. If a step fails, the ones already started are closed before the error
 * surfaces; if a signal arrives mid-start, the remaining steps are skipped.
 */
export async function serve(config: SluiceConfig, log: Logger, steps: (() => Promise<Service | Service[] | undefined>)[]): Promise<number> {
  tuneServiceHeap(config);
  const lifecycle = new Lifecycle(log, config.shutdownTimeoutMs);
  // Tracing first, so it is closed last and exports the spans of the others' shutdown.
  for (const step of [() => startTracing({ config, logger: log }), ...steps]) {
    if (lifecycle.stopping) break;
    try {
      await lifecycle.start(step);
    } catch (error) {
      if (lifecycle.stopping) break;
      await lifecycle.closeAll();
      throw error;
    }
  }
  if (!lifecycle.stopping) log.info({ services: lifecycle.serviceNames() }, 'Sluice is running; Ctrl-C stops it');
  return lifecycle.untilSignal();
}
