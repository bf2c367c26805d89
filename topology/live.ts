import type { Kafka, KafkaAdmin } from '../kafka/index.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { schemaTypeOf, topologyName, type Topology } from './model.ts';
import type { LiveSnapshot, LiveSubject, LiveTopic } from './plan.ts';
import { readAppliedState } from './state.ts';
import { subjectStatus } from './subject-status.ts';

/** Reads what the plan compares the file with: the topics, their configs, the subjects and the last applied state. */

export interface LiveSources {
  admin: KafkaAdmin;
  registry: RegistryClient;
  /** Where the applied state is kept; without it, removed topics are not looked for. */
  state?: { kafka: Kafka; topic: string };
}

async function liveTopics(admin: KafkaAdmin, names: string[]): Promise<Map<string, LiveTopic>> {
  const out = new Map<string, LiveTopic>();
  if (names.length === 0) return out;
  const [described, configs] = await Promise.all([admin.describeTopics(names), admin.describeTopicConfigs(names)]);
  for (const topic of described) {
    out.set(topic.name, {
      partitions: topic.partitions.length,
      // Partitions of one topic can differ after a reassignment; the largest is what the topic was made with.
      replicationFactor: Math.max(0, ...topic.partitions.map((p) => p.replicas.length)),
      configs: Object.fromEntries((configs.get(topic.name) ?? []).flatMap((c) => (c.value === null ? [] : [[c.name, c.value]]))),
    });
  }
  return out;
}

export async function gatherLive(topology: Topology, sources: LiveSources): Promise<LiveSnapshot> {
  const { admin, registry } = sources;
  const existing = new Set(await admin.listTopics());
  const state = sources.state && (await readAppliedState(sources.state.kafka, admin, sources.state.topic, topologyName(topology)));
  const relevant = [...new Set([...topology.topics.map((t) => t.name), ...(state?.topics ?? [])])].filter((name) => existing.has(name));
  const topics = await liveTopics(admin, relevant);
  const { brokers } = await admin.describeCluster();

  const subjects = new Map<string, LiveSubject>();
  for (const topic of topology.topics) {
    if (!topic.valueSchema) continue;
    const value = topic.valueSchema;
    subjects.set(value.subject, await subjectStatus(registry, value.subject, value.text, topic.compatibility, schemaTypeOf(value), value.contract));
  }
  return { brokers: brokers.length, topics, subjects, ...(state ? { managedTopics: state.topics } : {}) };
}
