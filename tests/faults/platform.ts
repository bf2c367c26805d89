import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../core/config.ts';
import { freePort, runSluice, waitForOk, type SluiceProcess } from '../support/processes.ts';
import { seam, uniqueName } from '../support/platform.ts';
import { inject } from 'vitest';

/**
 * The platform under fault: `sluice up` (registry, topology, ingress,
 * score-orders exactly once) as a user runs it, against the fault cluster, on a
 * copy of the project topology whose topics carry a unique suffix and whose
 * replication is the file's own (auto: RF 3, min.insync.replicas 2 on three brokers).
 */

export interface Platform {
  ingressUrl: string;
  registryUrl: string;
  topics: { placed: string; scored: string; dlq: string };
  /** The exactly-once worker's consumer group, and its transactional id (before any renewal: kafka/transaction.ts). */
  groupId: string;
  transactionalId(): string;
  topologyFile: string;
  env: NodeJS.ProcessEnv;
  /** The `sluice up` process (ingress, registry and worker in one: its RSS bounds the ingress's). */
  pid(): number | undefined;
  /** What `sluice up` logged (warnings and errors: SLUICE_LOG_LEVEL=warn), for failure messages. */
  output(): string;
  /** Stops `sluice up` and starts it again on the same topology, topics and registry topic. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function stopProcess(proc: SluiceProcess): Promise<void> {
  if (proc.child.exitCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 20_000);
  await proc.exited;
  clearTimeout(timer);
}

function topologyCopy(dir: string, suffix: string): { file: string; topics: Platform['topics'] } {
  const topics = { placed: `orders.placed.${suffix}`, scored: `orders.scored.${suffix}`, dlq: `orders.placed.dlq.${suffix}` };
  const text = readFileSync(join(PROJECT_ROOT, 'topology/sluice.topology.yaml'), 'utf8')
    .replace(/^bridges:[\s\S]*$/m, '')
    .replaceAll('orders.placed.dlq', topics.dlq)
    .replace(/orders\.placed(?![.\w-])/g, topics.placed)
    .replace(/orders\.scored(?![.\w-])/g, topics.scored)
    .replaceAll('../schemas/', `${PROJECT_ROOT}/schemas/`)
    .replaceAll('../consumers/', `${PROJECT_ROOT}/consumers/`)
    .replace('groupId: sluice.score-orders', `groupId: sluice.score-orders.${suffix}`)
    .replace(/^name: sluice$/m, `name: faults-${suffix}`);
  const file = join(dir, `faults-${suffix}.topology.yaml`);
  writeFileSync(file, text);
  return { file, topics };
}

export async function startPlatform(env: NodeJS.ProcessEnv = {}): Promise<Platform> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-faults-'));
  const suffix = uniqueName('f').slice(2);
  const { file, topics } = topologyCopy(dir, suffix);
  const [ingressPort, registryPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const fullEnv: NodeJS.ProcessEnv = {
    KAFKA_BROKERS: inject('kafkaBrokers').join(','),
    SLUICE_TOPOLOGY: file,
    SLUICE_INGRESS_HOST: '127.0.0.1',
    SLUICE_INGRESS_PORT: String(ingressPort),
    SLUICE_REGISTRY_PORT: String(registryPort),
    SLUICE_REGISTRY_URL: registryUrl,
    SLUICE_REGISTRY_TOPIC: `_schemas_faults_${suffix}`,
    SLUICE_WORKER_METRICS_PORT: String(metricsPort),
    SLUICE_LOG_LEVEL: process.env.SLUICE_TEST_LOG_LEVEL ?? 'warn',
    ...env,
  };
  const ingressUrl = `http://127.0.0.1:${ingressPort}`;
  const start = async (): Promise<SluiceProcess> => {
    const started = runSluice(['up'], fullEnv);
    await waitForOk(`${ingressUrl}/readyz`, started, 180_000);
    return started;
  };
  let proc = await start();
  return {
    ingressUrl,
    registryUrl,
    topics,
    groupId: `sluice.score-orders.${suffix}`,
    // consumers/start-worker.ts: `<group>-<pid>-<n>`, the first worker of the process.
    transactionalId: () => `sluice.score-orders.${suffix}-${proc.child.pid}-0`,
    topologyFile: file,
    env: fullEnv,
    pid: () => proc.child.pid,
    output: () => proc.output(),
    async restart() {
      await stopProcess(proc);
      proc = await start();
    },
    async stop() {
      await stopProcess(proc);
      // The whole log of `sluice up` (a failure message shows only its tail), for following a recovery afterwards.
      if (process.env.SLUICE_FAULTS_LOG) appendFileSync(process.env.SLUICE_FAULTS_LOG, proc.output());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Order ids on `topic` read back by an independent read_committed reader, with how often each appears. Counted as the
 * records come, none kept: after the overload soak the topics hold millions.
 */
export async function keyCounts(topic: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const reader = seam().partitionReader({ maxWaitMs: 100 });
  try {
    // From the first record written at or after 0 (each partition's start) to the end each partition has now.
    await reader.readBetween(topic, 0, Date.now() + 86_400_000, (record) => {
      const key = record.key?.toString('utf8') ?? '';
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return false;
    });
  } finally {
    await reader.close();
  }
  return counts;
}

/** How the accepted order ids came out on `topic` (after waitForKeys): the counts, those missing, and those written more than once. */
export async function scoredCounts(topic: string, accepted: readonly { orderId: string }[], timeoutMs: number): Promise<{ counts: Map<string, number>; lost: number; duplicated: number }> {
  const counts = await waitForKeys(
    topic,
    accepted.map((o) => o.orderId),
    timeoutMs,
  );
  return { counts, lost: accepted.filter((o) => !counts.has(o.orderId)).length, duplicated: [...counts.values()].filter((n) => n > 1).length };
}

/** Waits until `topic` holds every key of `required` (the worker catching up), then a settle time for late duplicates. */
export async function waitForKeys(topic: string, required: Iterable<string>, timeoutMs: number, settleMs = 3000): Promise<Map<string, number>> {
  const wanted = [...required];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await keyCounts(topic);
    if (wanted.every((key) => counts.has(key))) {
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      return keyCounts(topic);
    }
    if (Date.now() > deadline) return counts;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
