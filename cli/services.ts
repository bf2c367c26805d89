import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createKafka } from '../core/kafka.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from '../kafka/broker.ts';
import { startRegistry } from '../registry/server.ts';
import { startIngress } from '../producers/server.ts';
import { startWorker } from '../consumers/runtime.ts';
import { applyTopology } from '../topology/apply.ts';
import { loadTopology } from '../topology/load.ts';
import type { Topology, WorkerSpec } from '../topology/model.ts';
import { SluiceError } from '../core/errors.ts';
import type { Service } from './lifecycle.ts';

/** Starting each part of the platform, shared by `sluice up` and the single-service commands. */

export async function ensureKafka(config: SluiceConfig, log: Logger): Promise<Service | undefined> {
  if (config.kafkaBrokers) {
    log.info({ brokers: config.kafkaBrokers }, 'using the Kafka cluster in KAFKA_BROKERS');
    return undefined;
  }
  const options = localKafkaOptions(config);
  const kafka = await startLocalKafka(options, log.child({ component: 'kafka' }));
  // A broker that was already running (npm run kafka:up) is left running.
  return kafka.started ? { name: 'kafka', close: async () => void (await stopLocalKafka(options.dataDir, log)) } : undefined;
}

export async function registryService(config: SluiceConfig, log: Logger): Promise<Service> {
  const registry = await startRegistry({ config, logger: log.child({ component: 'registry' }) });
  log.info({ url: registry.url }, 'schema registry listening');
  return { name: 'registry', close: () => registry.close() };
}

/** Whether SLUICE_REGISTRY_URL points at the registry this process would start. */
export function registryIsLocal(config: SluiceConfig): boolean {
  const url = new URL(config.registryUrl);
  return url.hostname === config.registryHost && Number(url.port || 80) === config.registryPort;
}

export async function applyAtStart(config: SluiceConfig, topology: Topology, log: Logger): Promise<void> {
  const admin = createKafka(config, log, 'admin').admin();
  await admin.connect();
  try {
    await applyTopology(topology, admin, new RegistryClient(config.registryUrl), log.child({ component: 'topology' }));
  } finally {
    await admin.disconnect();
  }
}

export async function ingressService(config: SluiceConfig, topology: Topology, log: Logger): Promise<Service> {
  const ingress = await startIngress({ config, logger: log.child({ component: 'ingress' }), topology, registry: new RegistryClient(config.registryUrl) });
  log.info({ url: ingress.url, routes: topology.routes.map((r) => `${r.method} ${r.path} -> ${r.topic}`) }, 'ingress listening');
  return { name: 'ingress', close: () => ingress.close() };
}

export function findWorker(topology: Topology, name: string): WorkerSpec {
  const spec = topology.workers.find((w) => w.name === name);
  if (!spec) {
    throw new SluiceError('SLUICE_UNKNOWN_WORKER', `no worker "${name}" in ${topology.file} (workers: ${topology.workers.map((w) => w.name).join(', ') || 'none'})`);
  }
  return spec;
}

export async function workerService(config: SluiceConfig, topology: Topology, spec: WorkerSpec, log: Logger, instance?: number): Promise<Service> {
  const logger = log.child({ component: 'worker', ...(instance === undefined ? {} : { workerInstance: instance }) });
  const worker = await startWorker({ config, logger, spec, topology, registry: new RegistryClient(config.registryUrl) });
  return { name: `worker ${spec.name}${instance === undefined ? '' : `#${instance}`}`, close: () => worker.stop() };
}

export function selectWorkers(config: SluiceConfig, topology: Topology): WorkerSpec[] {
  if (config.workers === '') return [];
  if (config.workers === '*') return topology.workers;
  return config.workers.split(',').map((name) => findWorker(topology, name.trim()));
}

export { loadTopology };
