import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { localClusterOptions, startLocalCluster, stopLocalCluster } from '../broker/cluster.ts';
import { minInsyncReplicas } from '../broker/replication.ts';
import { loadConfig, type SluiceConfig } from '../core/config.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startRegistry } from '../registry/server.ts';
import { benchTopology, spawnBench, withAdmin, type BenchEnv } from './common.ts';
import { loadHttp, type EventPool } from './ingress.ts';
import type { WorkerBenchOptions, WorkerFigures } from './worker.ts';

/**
 * `npm run bench -- --full`, last stage: the ingress and the exactly-once
 * worker on a local three-node cluster, with topics of replication factor 3
 * (min.insync.replicas 2, what production runs) beside replication factor 1 on
 * the same cluster, in the same run, so the cost of replication is one ratio.
 * The cluster gets its own ports (SLUICE_BENCH_CLUSTER_PORT, default 29192) and
 * data dir (<data dir>/bench-cluster, wiped).
 */

export interface ReplicatedCell {
  replicationFactor: number;
  minInsyncReplicas: number;
  /** Single events, 128 connections. */
  ingressEventsPerSec: number;
  ingressP99Ms: number;
  ingressNon2xx: number;
  exactlyOnceEventsPerSec: number | null;
}

export interface ReplicatedFigures {
  brokers: string[];
  cells: ReplicatedCell[];
}

export interface ReplicatedOptions {
  httpDurationS: number;
  pool: EventPool;
  runId: string;
  mode: 'quick' | 'full';
  workerBench: ((options: WorkerBenchOptions) => Promise<WorkerFigures>) | undefined;
  log: Logger;
}

function clusterConfig(): SluiceConfig {
  const port = Number(process.env.SLUICE_BENCH_CLUSTER_PORT ?? '29192');
  return loadConfig(process.env, { kafkaPort: String(port), kafkaControllerPort: String(port + 1), kafkaSaslSslPort: '' });
}

async function ingressOn(env: BenchEnv, options: ReplicatedOptions): Promise<{ eventsPerSec: number; p99: number; non2xx: number }> {
  const child = spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) });
  try {
    const ready = await child.ready;
    const url = `${String(ready.url)}/v1/orders`;
    await loadHttp({ url, connections: 16, durationS: 2, bodies: options.pool.singleBodies, eventsPerRequest: 1 });
    const figures = await loadHttp({ url, connections: 128, durationS: options.httpDurationS, bodies: options.pool.singleBodies, eventsPerRequest: 1 });
    return { eventsPerSec: figures.eventsPerSec, p99: figures.latencyMs.p99, non2xx: figures.non2xx };
  } finally {
    await child.stop();
  }
}

export async function runReplicated(options: ReplicatedOptions): Promise<ReplicatedFigures> {
  const { log } = options;
  const config = clusterConfig();
  const clusterOptions = { ...localClusterOptions(config, 3), dataDir: join(config.dataDir, 'bench-cluster') };
  await stopLocalCluster(clusterOptions.dataDir, log);
  rmSync(clusterOptions.dataDir, { recursive: true, force: true });
  const cluster = await startLocalCluster(clusterOptions, log);
  const registryConfig = loadConfig(process.env, { kafkaBrokers: cluster.brokers.join(','), registryTopic: `_schemas_bench_${options.runId}_rf`, logLevel: 'warn', logFormat: 'json' });
  const registry = await startRegistry({ config: registryConfig, logger: createLogger(registryConfig, 'bench-registry', 2), port: 0 });
  try {
    const cells: ReplicatedCell[] = [];
    for (const factor of [1, 3]) {
      const minInsync = minInsyncReplicas(factor);
      const prefix = `bench.${options.runId}.rf${factor}`;
      const env: BenchEnv = {
        brokers: cluster.brokers,
        registryUrl: registry.url,
        runId: `${options.runId}-rf${factor}`,
        inputTopic: `${prefix}.orders.placed`,
        outputTopic: `${prefix}.orders.scored`,
        deadLetterTopic: `${prefix}.orders.placed.dlq`,
        partitions: 6,
      };
      await withAdmin(cluster.brokers, (admin) =>
        admin.createTopics(
          [env.inputTopic, env.outputTopic, env.deadLetterTopic].map((name) => ({
            name,
            partitions: env.partitions,
            replicationFactor: factor,
            configs: { 'min.insync.replicas': String(minInsync) },
          })),
        ),
      );
      const schema = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!;
      await new RegistryClient(registry.url).register(schema.subject, schema.text);
      const ingress = await ingressOn(env, options);
      log.info({ replicationFactor: factor, ...ingress }, 'replicated: ingress');
      const worker = options.workerBench
        ? await options.workerBench({ brokers: cluster.brokers, registryUrl: registry.url, runId: env.runId, mode: options.mode, config: registryConfig, logger: log, replicationFactor: factor })
        : undefined;
      log.info({ replicationFactor: factor, exactlyOnce: worker?.exactlyOnceEventsPerSec }, 'replicated: worker');
      cells.push({
        replicationFactor: factor,
        minInsyncReplicas: minInsync,
        ingressEventsPerSec: ingress.eventsPerSec,
        ingressP99Ms: ingress.p99,
        ingressNon2xx: ingress.non2xx,
        exactlyOnceEventsPerSec: worker?.exactlyOnceEventsPerSec ?? null,
      });
    }
    return { brokers: cluster.brokers, cells };
  } finally {
    await registry.close();
    await stopLocalCluster(clusterOptions.dataDir, log);
    rmSync(clusterOptions.dataDir, { recursive: true, force: true });
  }
}
