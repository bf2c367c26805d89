import kafkajs, { type Admin } from 'kafkajs';

// kafkajs is CommonJS, and Node's named-export detection misses these two.
const { AssignerProtocol, ConfigResourceTypes } = kafkajs;

/** What the console shows about topics and consumer groups, read through the Kafka admin API. */

export interface TopicSummary {
  name: string;
  partitions: number;
  messages: number;
}

export interface PartitionDetail {
  partition: number;
  leader: number;
  replicas: number[];
  low: string;
  high: string;
  messages: number;
}

export interface TopicDetail {
  name: string;
  partitions: PartitionDetail[];
  configs: { name: string; value: string | null; isDefault: boolean }[];
}

export interface GroupSummary {
  groupId: string;
  protocolType: string;
}

export interface GroupDetail {
  groupId: string;
  state: string;
  members: { memberId: string; clientId: string; host: string; assignment: Record<string, number[]> }[];
  lag: { topic: string; partition: number; committed: string; high: string; lag: number }[];
  totalLag: number;
}

/** Tails join throwaway groups of their own; listing them would only be noise. */
export const isTailGroup = (groupId: string): boolean => groupId.startsWith('sluice-tail-');

/** A topic deleted between listing and reading it (other clients do that), as kafkajs reports it. */
function isUnknownTopic(error: unknown): boolean {
  const e = error as { type?: unknown; code?: unknown; cause?: unknown; originalError?: unknown };
  return (
    e.type === 'UNKNOWN_TOPIC_OR_PARTITION' ||
    e.code === 3 ||
    (e.originalError !== undefined && isUnknownTopic(e.originalError)) ||
    (e.cause !== undefined && e.cause !== null && isUnknownTopic(e.cause))
  );
}

/**
 * kafkajs refreshes metadata for every known topic on many admin calls, and
 * fails the call when one of them was deleted meanwhile; the next try sees the
 * fresh list.
 */
async function tolerant<T>(call: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (error) {
      if (i >= attempts || !isUnknownTopic(error)) throw error;
    }
  }
}

const messagesIn = (low: string, high: string): number => Number(BigInt(high) - BigInt(low));

export async function listTopics(admin: Admin): Promise<TopicSummary[]> {
  const { topics } = await tolerant(() => admin.fetchTopicMetadata());
  const visible = topics.filter((t) => !t.name.startsWith('__')).sort((a, b) => a.name.localeCompare(b.name));
  const summaries = await Promise.all(
    visible.map(async (t) => {
      try {
        const offsets = await admin.fetchTopicOffsets(t.name);
        return { name: t.name, partitions: t.partitions.length, messages: offsets.reduce((sum, o) => sum + messagesIn(o.low, o.high), 0) };
      } catch (error) {
        // Deleted since it was listed: it no longer belongs on the page.
        if (isUnknownTopic(error)) return undefined;
        throw error;
      }
    }),
  );
  return summaries.filter((t): t is TopicSummary => t !== undefined);
}

export async function describeTopic(admin: Admin, name: string): Promise<TopicDetail> {
  const [{ topics }, offsets, configs] = await tolerant(() =>
    Promise.all([
      admin.fetchTopicMetadata({ topics: [name] }),
      admin.fetchTopicOffsets(name),
      admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name }], includeSynonyms: false }),
    ]),
  );
  const metadata = topics[0]?.partitions ?? [];
  const partitions = offsets
    .map((o) => {
      const m = metadata.find((p) => p.partitionId === o.partition);
      return { partition: o.partition, leader: m?.leader ?? -1, replicas: m?.replicas ?? [], low: o.low, high: o.high, messages: messagesIn(o.low, o.high) };
    })
    .sort((a, b) => a.partition - b.partition);
  const entries = configs.resources[0]?.configEntries ?? [];
  return {
    name,
    partitions,
    configs: entries.map((c) => ({ name: c.configName, value: c.configValue, isDefault: c.isDefault })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}

export async function listGroups(admin: Admin): Promise<GroupSummary[]> {
  const { groups } = await tolerant(() => admin.listGroups());
  return groups.filter((g) => !isTailGroup(g.groupId)).sort((a, b) => a.groupId.localeCompare(b.groupId));
}

export async function describeGroup(admin: Admin, groupId: string): Promise<GroupDetail> {
  const [{ groups }, committed] = await tolerant(() => Promise.all([admin.describeGroups([groupId]), admin.fetchOffsets({ groupId })]));
  const group = groups[0];
  const members = (group?.members ?? []).map((m) => {
    let assignment: Record<string, number[]> = {};
    if (m.memberAssignment.length > 0) assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {};
    return { memberId: m.memberId, clientId: m.clientId, host: m.clientHost, assignment };
  });
  const lag: GroupDetail['lag'] = [];
  // Kafka answers an offset fetch for a whole group with the partitions that have a commit only;
  // every partition of a topic the group reads or is assigned counts, or a partition the group
  // never committed on would hide its whole backlog.
  const topics = new Set([...committed.map((t) => t.topic), ...members.flatMap((m) => Object.keys(m.assignment))]);
  for (const topic of topics) {
    const offsets = new Map(committed.find((t) => t.topic === topic)?.partitions.map((p) => [p.partition, p.offset]));
    for (const { partition, high } of await tolerant(() => admin.fetchTopicOffsets(topic))) {
      const offset = offsets.get(partition) ?? '-1';
      // No commit yet: everything on the partition is still to be read.
      const behind = offset === '-1' ? Number(high) : Math.max(0, Number(BigInt(high) - BigInt(offset)));
      lag.push({ topic, partition, committed: offset, high, lag: behind });
    }
  }
  lag.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  return { groupId, state: group?.state ?? 'Unknown', members, lag, totalLag: lag.reduce((sum, l) => sum + l.lag, 0) };
}
