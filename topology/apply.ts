import type { Admin, ITopicConfig } from 'kafkajs';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { Topology } from './model.ts';

export interface AppliedTopology {
  createdTopics: string[];
  /** Registered schema id per topic with a valueSchema. */
  schemaIds: Map<string, number>;
}

/**
 * Brings the cluster up to the topology at start: creates the topics that are
 * missing and registers each value schema (the registry refuses an incompatible
 * one with 409, which stops start-up with the registry's reason).
 */
export async function applyTopology(topology: Topology, admin: Admin, registry: RegistryClient, log: Logger): Promise<AppliedTopology> {
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = topology.topics
    .filter((t) => !existing.has(t.name))
    .map((t) => ({
      topic: t.name,
      numPartitions: t.partitions,
      replicationFactor: t.replicationFactor,
      configEntries: Object.entries(t.configs).map(([name, value]) => ({ name, value })),
    }));
  if (missing.length > 0) {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
    log.info({ topics: missing.map((t) => t.topic) }, 'created topics');
  }
  const schemaIds = new Map<string, number>();
  for (const topic of topology.topics) {
    if (!topic.valueSchema) continue;
    const id = await registry.register(topic.valueSchema.subject, topic.valueSchema.text);
    schemaIds.set(topic.name, id);
    log.info({ subject: topic.valueSchema.subject, schemaId: id }, 'schema registered');
  }
  return { createdTopics: missing.map((t) => t.topic), schemaIds };
}
