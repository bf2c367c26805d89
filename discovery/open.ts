import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, type SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { EtcdServiceRegistry } from './etcd.ts';
import { localEtcdOptions, startLocalEtcd, stopLocalEtcd } from './local-etcd.ts';
import type { ServiceInstance, ServiceKind, ServiceRegistry } from './registry.ts';

/** Choosing and opening the discovery backend from the configuration. */

export interface Discovery {
  registry: ServiceRegistry;
  /** Closes the client (deregistering what it registered) and the local etcd if this call started it. */
  close(): Promise<void>;
}

/**
 * Discovery is on when SLUICE_ETCD names a cluster, or when asked for
 * (`--discovery`): then a local etcd is started unless one already runs.
 */
export async function openDiscovery(config: SluiceConfig, log: Logger, requested: boolean): Promise<Discovery | undefined> {
  if (!config.etcd && !requested) return undefined;
  let endpoints = config.etcd;
  let stopLocal: (() => Promise<void>) | undefined;
  if (!endpoints) {
    const options = localEtcdOptions(config);
    const etcd = await startLocalEtcd(options, log.child({ service: 'etcd' }));
    endpoints = etcd.endpoints;
    // An etcd that was already running (`sluice etcd up`, another replica) is left running.
    if (etcd.started) stopLocal = async () => void (await stopLocalEtcd(options.dataDir, log));
  }
  const registry = new EtcdServiceRegistry({ endpoints, prefix: config.discoveryPrefix, ttlS: config.discoveryTtlS, logger: log.child({ component: 'discovery' }) });
  log.info({ discovery: registry.description }, 'service discovery enabled');
  return {
    registry,
    close: async () => {
      await registry.close();
      await stopLocal?.();
    },
  };
}

const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

export function describeInstance(fields: { kind: ServiceKind; name: string; address: string; port: number; healthPath?: string; replica?: number }): ServiceInstance {
  const base = `${fields.kind}-${hostname()}-${process.pid}`;
  return {
    id: fields.replica === undefined ? base : `${base}-${fields.replica}`,
    kind: fields.kind,
    name: fields.name,
    address: fields.address,
    port: fields.port,
    healthUrl: fields.healthPath === undefined ? '' : `http://${fields.address}:${fields.port}${fields.healthPath}`,
    version: VERSION,
    pid: process.pid,
    startedAt: new Date().toISOString(),
  };
}
