import type { Kafka, KafkaAdmin } from '../kafka/index.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { RegistryError } from '../core/errors.ts';
import { schemaTypeOf, subjectFor, topologyName, type Topology } from './model.ts';
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
  const unmatchedPins: string[] = [];
  for (const worker of topology.workers) {
    if (worker.useLatestWithMetadata && !(await pinMatches(registry, subjectFor(worker.input), worker.useLatestWithMetadata))) unmatchedPins.push(worker.name);
  }
  return { brokers: brokers.length, topics, subjects, ...(state ? { managedTopics: state.topics } : {}), ...(unmatchedPins.length > 0 ? { unmatchedPins } : {}) };
}

/** Whether a version of `subject` has every metadata property of `pin`, asked as the pinned worker will ask. */
async function pinMatches(registry: RegistryClient, subject: string, pin: Readonly<Record<string, string>>): Promise<boolean> {
  const query = Object.entries(pin)
    .map(([key, value]) => `&key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`)
    .join('');
  try {
    await registry.request('GET', `/subjects/${encodeURIComponent(subject)}/metadata?deleted=true${query}`);
    return true;
  } catch (error) {
    // No such subject (40401) or no version with those properties (40403); anything else is the registry's failure.
    if (error instanceof RegistryError && error.statusCode === 404) return false;
    throw error;
  }
}
