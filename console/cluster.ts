import type { SluiceError } from '../core/errors.ts';
import type { KafkaAdmin } from '../kafka/index.ts';

/** What the console shows about topics and consumer groups, read through the Kafka admin API. */

export interface TopicSummary {
  name: string;
  partitions: number;
  /** Offsets between the partitions' starts and ends, summed (see offsetSpan). */
  offsetSpan: number;
}

export interface PartitionDetail {
  partition: number;
  leader: number;
  replicas: number[];
  low: string;
  high: string;
  offsetSpan: number;
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

/** Tails of older Sluice versions joined throwaway groups of their own; listing them would only be noise. */
export const isTailGroup = (groupId: string): boolean => groupId.startsWith('sluice-tail-');

/** A topic deleted between listing and reading it (other clients do that). */
function isUnknownTopic(error: unknown): boolean {
  return (error as SluiceError | null)?.code === 'SLUICE_KAFKA_UNKNOWN_TOPIC';
}

/**
 * high - low is an offset span, not a record count, and the console says so:
 * transaction markers take offsets (an exactly-once worker's output holds one
 * per partition per transaction), and compaction leaves gaps. Counting records
 * would mean reading every partition from its start (the codec knows control
 * batches, but only of what it reads), which is unbounded on a real topic; a
 * page listing topics must cost a ListOffsets, so the figure is named for what
 * it is.
 */
export const offsetSpan = (low: bigint, high: bigint): number => Number(high - low);

export async function listTopics(admin: KafkaAdmin): Promise<TopicSummary[]> {
  const visible = (await admin.listTopics()).filter((t) => !t.startsWith('__')).sort((a, b) => a.localeCompare(b));
  const summaries = await Promise.all(
    visible.map(async (name) => {
      try {
        const offsets = await admin.watermarks(name);
        return { name, partitions: offsets.length, offsetSpan: offsets.reduce((sum, o) => sum + offsetSpan(o.low, o.high), 0) };
      } catch (error) {
        // Deleted since it was listed: it no longer belongs on the page.
        if (isUnknownTopic(error)) return undefined;
        throw error;
      }
    }),
  );
  return summaries.filter((t): t is TopicSummary => t !== undefined);
}

export async function describeTopic(admin: KafkaAdmin, name: string): Promise<TopicDetail> {
  const [[described], offsets, configs] = await Promise.all([admin.describeTopics([name]), admin.watermarks(name), admin.describeTopicConfigs([name])]);
  const partitions = offsets
    .map((o) => {
      const m = described?.partitions.find((p) => p.partition === o.partition);
      return { partition: o.partition, leader: m?.leader ?? -1, replicas: m?.replicas ?? [], low: o.low.toString(), high: o.high.toString(), offsetSpan: offsetSpan(o.low, o.high) };
    })
    .sort((a, b) => a.partition - b.partition);
  return {
    name,
    partitions,
    configs: (configs.get(name) ?? []).map((c) => ({ name: c.name, value: c.isSensitive ? null : c.value, isDefault: c.isDefault })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}

export async function listGroups(admin: KafkaAdmin): Promise<GroupSummary[]> {
  const groups = await admin.listGroups();
  return groups
    .filter((g) => !isTailGroup(g.groupId))
    .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType }))
    .sort((a, b) => a.groupId.localeCompare(b.groupId));
}

export async function describeGroup(admin: KafkaAdmin, groupId: string): Promise<GroupDetail> {
  const [[group], committed] = await Promise.all([admin.describeGroups([groupId]), admin.committedOffsets(groupId)]);
  const members = (group?.members ?? []).map((m) => ({ memberId: m.memberId, clientId: m.clientId, host: m.host, assignment: m.assignment }));
  const lag: GroupDetail['lag'] = [];
  // Kafka answers an offset fetch for a whole group with the partitions that have a commit only;
  // every partition of a topic the group reads or is assigned counts, or a partition the group
  // never committed on would hide its whole backlog.
  const topics = new Set([...committed.map((c) => c.topic), ...members.flatMap((m) => Object.keys(m.assignment))]);
  for (const topic of topics) {
    const offsets = new Map(committed.filter((c) => c.topic === topic).map((c) => [c.partition, c.offset]));
    let ends: Map<number, bigint>;
    try {
      ends = await admin.listOffsets(topic, 'latest');
    } catch (error) {
      if (isUnknownTopic(error)) continue;
      throw error;
    }
    for (const [partition, high] of ends) {
      const offset = offsets.get(partition);
      // No commit yet: everything on the partition is still to be read.
      const behind = offset === undefined ? Number(high) : Math.max(0, Number(high - offset));
      lag.push({ topic, partition, committed: offset === undefined ? '-1' : offset.toString(), high: high.toString(), lag: behind });
    }
  }
  lag.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  return { groupId, state: group?.state ?? 'Unknown', members, lag, totalLag: lag.reduce((sum, l) => sum + l.lag, 0) };
}
