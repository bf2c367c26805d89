import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createKafka } from '../kafka/index.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from '../broker/broker.ts';
import { localClusterDir, runningCluster } from '../broker/cluster.ts';
import { startRegistry } from '../registry/server.ts';
import { startIngress } from '../producers/server.ts';
import { startWorker } from '../consumers/start-worker.ts';
import { workerMetrics } from '../consumers/metrics.ts';
import { startMetricsServer } from '../consumers/metrics-server.ts';
import { applyTopology } from '../topology/apply.ts';
import { loadTopology } from '../topology/load.ts';
import type { Topology, WorkerSpec } from '../topology/model.ts';
import { SluiceError } from '../core/errors.ts';
import type { Service } from './lifecycle.ts';
import { hostname } from 'node:os';
import { describeInstance, openDiscovery, type Discovery } from '../discovery/open.ts';
import type { ServiceInstance } from '../discovery/registry.ts';

/** Starting each part of the platform, shared by `sluice up` and the single-service commands. */

/**
 * With KAFKA_BROKERS unset and a local cluster running (`sluice kafka up
 * --brokers 3`), the platform uses that cluster, bootstrapping from every node.
 */
export function preferRunningCluster(config: SluiceConfig): SluiceConfig {
  if (config.kafkaBrokers) return config;
  const brokers = runningCluster(localClusterDir(config));
  return brokers ? Object.freeze({ ...config, kafkaBrokers: brokers }) : config;
}

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

/**
 * Registers a started service when discovery is on. Closing deregisters first,
 * so load balancers stop sending to an instance before it stops answering.
 */
async function announced(service: Service, discovery: Discovery | undefined, instance: () => ServiceInstance, log: Logger): Promise<Service> {
  if (!discovery) return service;
  let registration;
  try {
    registration = await discovery.registry.register(instance());
  } catch (error) {
    await service.close();
    throw error;
  }
  log.info({ instance: registration.instance.id, discovery: discovery.registry.description }, 'registered for discovery');
  return {
    name: service.name,
    close: async () => {
      try {
        await registration.deregister();
      } finally {
        await service.close();
      }
    },
  };
}

function hostAndPort(url: string, advertise: string | undefined): { address: string; port: number } {
  const u = new URL(url);
  return { address: advertise ?? u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

export async function registryService(config: SluiceConfig, log: Logger, discovery?: Discovery): Promise<Service> {
  const registry = await startRegistry({ config, logger: log.child({ component: 'registry' }) });
  log.info({ url: registry.url }, 'schema registry listening');
  const service = { name: 'registry', close: () => registry.close() };
  return announced(service, discovery, () => describeInstance({ kind: 'registry', name: 'registry', ...hostAndPort(registry.url, config.advertiseHost), healthPath: '/subjects' }), log);
}

/** Whether SLUICE_REGISTRY_URL points at the registry this process would start. */
export function registryIsLocal(config: SluiceConfig): boolean {
  const url = new URL(config.registryUrl);
  return url.hostname === config.registryHost && Number(url.port || 80) === config.registryPort;
}

export async function applyAtStart(config: SluiceConfig, topology: Topology, log: Logger): Promise<void> {
  const admin = createKafka(config, log, 'admin').admin();
  try {
    await applyTopology(topology, admin, new RegistryClient(config.registryUrl), log.child({ component: 'topology' }));
  } finally {
    await admin.close();
  }
}

export interface ReplicaOptions {
  discovery?: Discovery;
  /** Replica number when one process runs several (`sluice ingress --instances N`). */
  replica?: number;
  port?: number;
}

export async function ingressService(config: SluiceConfig, topology: Topology, log: Logger, options: ReplicaOptions = {}): Promise<Service> {
  const logger = log.child({ component: 'ingress', ...(options.replica === undefined ? {} : { replica: options.replica }) });
  const ingress = await startIngress({ config, logger, topology, registry: new RegistryClient(config.registryUrl), ...(options.port === undefined ? {} : { port: options.port }) });
  log.info({ url: ingress.url, routes: topology.routes.map((r) => `${r.method} ${r.path} -> ${r.topic}`) }, 'ingress listening');
  const service = { name: options.replica === undefined ? 'ingress' : `ingress#${options.replica}`, close: () => ingress.close() };
  return announced(
    service,
    options.discovery,
    () =>
      describeInstance({
        kind: 'ingress',
        name: 'ingress',
        ...hostAndPort(ingress.url, config.advertiseHost),
        healthPath: '/readyz',
        ...(options.replica === undefined ? {} : { replica: options.replica }),
      }),
    log,
  );
}

export function findWorker(topology: Topology, name: string): WorkerSpec {
  const spec = topology.workers.find((w) => w.name === name);
  if (!spec) {
    throw new SluiceError('SLUICE_UNKNOWN_WORKER', `no worker "${name}" in ${topology.file} (workers: ${topology.workers.map((w) => w.name).join(', ') || 'none'})`);
  }
  return spec;
}

export async function workerService(config: SluiceConfig, topology: Topology, spec: WorkerSpec, log: Logger, instance?: number, discovery?: Discovery): Promise<Service> {
  const logger = log.child({ component: 'worker', ...(instance === undefined ? {} : { workerInstance: instance }) });
  const worker = await startWorker({ config, logger, spec, topology, registry: new RegistryClient(config.registryUrl) });
  const service = { name: `worker ${spec.name}${instance === undefined ? '' : `#${instance}`}`, close: () => worker.stop() };
  // Workers serve no HTTP: they are listed (which group members run where) but not health-checked.
  return announced(service, discovery, () => describeInstance({ kind: 'worker', name: spec.name, address: hostname(), port: 0, ...(instance === undefined ? {} : { replica: instance }) }), log);
}

/** Opens discovery as a service of its own, so it closes after (and deregisters before) everything it announced. */
/** Discovery as a start-up step; the steps after it read `current()` (undefined when discovery is off). */
export function discoveryStep(config: SluiceConfig, log: Logger, requested: boolean): { start(): Promise<Service | undefined>; current(): Discovery | undefined } {
  let opened: Discovery | undefined;
  return {
    async start() {
      const discovery = await openDiscovery(config, log, requested);
      opened = discovery;
      return discovery ? { name: 'discovery', close: () => discovery.close() } : undefined;
    },
    current: () => opened,
  };
}

/** GET /metrics for every worker of this process (they share one registry). */
export async function workerMetricsService(config: SluiceConfig, log: Logger): Promise<Service> {
  const server = await startMetricsServer(workerMetrics().registry, { config, host: config.workerMetricsHost, port: config.workerMetricsPort }, log.child({ component: 'worker-metrics' }));
  return { name: 'worker metrics', close: () => server.close() };
}

export function selectWorkers(config: SluiceConfig, topology: Topology): WorkerSpec[] {
  if (config.workers === '') return [];
  if (config.workers === '*') return topology.workers;
  return config.workers.split(',').map((name) => findWorker(topology, name.trim()));
}

export { loadTopology };
