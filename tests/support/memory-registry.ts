import type { FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { buildRegistryApp } from '../../registry/routes.ts';
import { RegistryState } from '../../registry/state.ts';
import type { RegistryStore } from '../../registry/store.ts';

/** The registry's HTTP layer over its state, without the Kafka log: a write applies straight to memory. */
export function memoryRegistryApp(config: SluiceConfig, logger: Logger): { app: FastifyInstance; state: RegistryState } {
  const state = new RegistryState();
  const store = {
    state,
    topic: '_schemas',
    catchUp: async () => undefined,
    execute: async <T>(plan: (s: RegistryState) => { records: Parameters<RegistryState['apply']>[0][]; result: T }) => {
      const { records, result } = plan(state);
      for (const r of records) state.apply(r);
      return result;
    },
  } as unknown as RegistryStore;
  return { app: buildRegistryApp(store, logger, config), state };
}
