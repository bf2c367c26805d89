import type { AddressInfo } from 'node:net';
import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { checkExposure, listeningUrl } from '../access/http.ts';
import { buildRegistryApp } from './routes.ts';
import { RegistryStore } from './store.ts';

export interface RegistryOptions {
  config: SluiceConfig;
  logger: Logger;
  /** Defaults to config.registryHost. */
  host?: string;
  /** Defaults to config.registryPort; 0 picks a free port. */
  port?: number;
  /** Defaults to config.registryTopic. */
  topic?: string;
}

export interface RunningRegistry {
  /** Where the registry answers, with the port actually bound. */
  url: string;
  close(): Promise<void>;
}

/** Loads the registry's state from Kafka, then serves the Confluent API. */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const { config } = options;
  const logger = options.logger;
  const store = new RegistryStore({ config, logger, topic: options.topic ?? config.registryTopic });
  await store.start();
  const app = buildRegistryApp(store, logger, config);
  try {
    checkExposure(config, options.host ?? config.registryHost, 'registry', logger);
    await app.listen({ host: options.host ?? config.registryHost, port: options.port ?? config.registryPort });
  } catch (error) {
    await store.close();
    throw error;
  }
  const url = listeningUrl(app.server.address() as AddressInfo, config);
  logger.info({ url, topic: store.topic }, 'schema registry listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        try {
          await app.close();
        } finally {
          await store.close();
        }
      })();
      return closing;
    },
  };
}
