import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { localClusterOptions, startLocalCluster, type ClusterNode, type LocalCluster, type LocalClusterOptions } from '../../broker/cluster.ts';
import { fetchMetadata, type TopicMetadata } from '../../broker/probe.ts';
import { loadConfig, type SluiceConfig } from '../../core/config.ts';
import { createKafka } from '../../kafka/index.ts';

/** The fault suite's cluster, as seen from a test: its nodes, leaders and ISRs. */

export function faultsConfig(): SluiceConfig {
  const port = Number(process.env.SLUICE_FAULTS_KAFKA_PORT ?? '23092');
  return loadConfig(process.env, {
    kafkaPort: String(port),
    kafkaControllerPort: String(port + 1),
    kafkaSaslSslPort: '',
    logLevel: process.env.SLUICE_TEST_LOG_LEVEL ?? 'warn',
  });
}

export function faultsClusterOptions(config: SluiceConfig): LocalClusterOptions {
  return { ...localClusterOptions(config, 3), dataDir: join(config.dataDir, 'faults-cluster') };
}

/** Handles on the running nodes (startLocalCluster starts none that already run). */
export function faultsCluster(): Promise<LocalCluster> {
  return startLocalCluster(faultsClusterOptions(faultsConfig()), pino({ level: 'silent' }));
}

async function topicMetadata(cluster: LocalCluster, topic: string): Promise<TopicMetadata | undefined> {
  for (const node of cluster.nodes.filter((n) => n.pid() !== undefined)) {
    const metadata = await fetchMetadata(node.address, [topic]).catch(() => undefined);
    const found = metadata?.topics.find((t) => t.name === topic);
    if (found) return found;
  }
  return undefined;
}

/** The node leading the most partitions of `topic` (the lowest id on a tie). */
export async function leaderOfMost(cluster: LocalCluster, topic: string): Promise<ClusterNode> {
  const metadata = await topicMetadata(cluster, topic);
  const counts = new Map<number, number>();
  for (const p of metadata?.partitions ?? []) if (p.leader >= 0) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
  const [id] = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] ?? [];
  const node = cluster.nodes.find((n) => n.id === id);
  if (!node) throw new Error(`no partition of ${topic} has a leader`);
  return node;
}

/** Resolves once every partition of every topic has all `replicas` in its ISR. */
export async function waitForFullIsr(cluster: LocalCluster, topics: string[], replicas = 3, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const topic of topics) {
    for (;;) {
      const partitions = (await topicMetadata(cluster, topic))?.partitions ?? [];
      if (partitions.length > 0 && partitions.every((p) => p.isr.length >= replicas && p.leader >= 0)) break;
      if (Date.now() > deadline) throw new Error(`${topic}: not every partition has ${replicas} replicas in sync within ${timeoutMs} ms`);
      await sleep(250);
    }
  }
}

/** Starts the nodes an earlier test left down, so each file begins (and leaves the next one) a whole cluster. */
export async function startDownNodes(cluster: LocalCluster | undefined): Promise<void> {
  await Promise.all((cluster?.nodes ?? []).filter((n) => n.pid() === undefined).map((n) => n.start()));
}

/** Replication factor and ISR sizes of `topic` as the cluster reports them. */
export async function replicationOf(cluster: LocalCluster, topic: string): Promise<{ replicas: number[]; isr: number[] }> {
  const partitions = (await topicMetadata(cluster, topic))?.partitions ?? [];
  return { replicas: partitions.map((p) => p.replicas.length), isr: partitions.map((p) => p.isr.length) };
}

/**
 * Resolves once no partition of `topic` is led by `nodeId` and every one has a leader; with `outOfIsr`, also once
 * `nodeId` has left every ISR. Until then an acks=all write waits for the dead follower: Kafka drops it from the
 * ISR only when the controller fences it (broker.session.timeout.ms, 9 s), which is how long a broker loss holds
 * writes back on any cluster.
 */
export async function waitForLeadersOff(cluster: LocalCluster, topic: string, nodeId: number, timeoutMs = 90_000, outOfIsr = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const partitions = (await topicMetadata(cluster, topic))?.partitions ?? [];
    if (partitions.length > 0 && partitions.every((p) => p.leader >= 0 && p.leader !== nodeId && (!outOfIsr || !p.isr.includes(nodeId)))) return;
    if (Date.now() > deadline) throw new Error(`${topic}: node ${nodeId} still leads partitions after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * The node to SIGKILL: the leader of most partitions of `topic` (default), or, with SLUICE_FAULTS_VICTIM=transaction
 * (or group), the coordinator of the worker's transactional id (or group), the hard case for an exactly-once worker.
 */
export async function pickVictim(cluster: LocalCluster, topic: string, keys: { transactionalId: string; groupId: string }): Promise<ClusterNode> {
  const kind = process.env.SLUICE_FAULTS_VICTIM ?? 'leader';
  if (kind === 'leader') return leaderOfMost(cluster, topic);
  if (kind !== 'transaction' && kind !== 'group') throw new Error(`SLUICE_FAULTS_VICTIM=${kind}: leader, transaction or group`);
  const admin = createKafka(faultsConfig(), pino({ level: 'silent' }), 'faults').admin({ name: 'faults-victim' });
  try {
    const id = await admin.coordinator(kind, kind === 'transaction' ? keys.transactionalId : keys.groupId);
    const node = cluster.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`the ${kind} coordinator ${id} is not a node of the fault cluster`);
    return node;
  } finally {
    await admin.close();
  }
}
