import type { KafkaAdmin } from '../kafka/index.ts';

/** A consumer group's members, their partitions and the lag of each partition: what `sluice status` prints. */

export interface MemberStatus {
  memberId: string;
  clientId: string;
  host: string;
  /** topic -> partitions */
  assignment: Record<string, number[]>;
}

export interface PartitionStatus {
  topic: string;
  partition: number;
  /** The group's committed offset, or undefined when it never committed on this partition. */
  committed: string | undefined;
  /** End of the partition for read-committed readers (last stable offset). */
  end: string;
  lag: string;
  memberId: string | undefined;
}

export interface GroupStatus {
  groupId: string;
  state: string;
  members: MemberStatus[];
  partitions: PartitionStatus[];
  totalLag: string;
}

export async function groupStatus(admin: KafkaAdmin, groupId: string, topics: readonly string[]): Promise<GroupStatus> {
  const [group] = await admin.describeGroups([groupId]);
  const members: MemberStatus[] = (group?.members ?? []).map((m) => ({
    memberId: m.memberId,
    clientId: m.clientId,
    host: m.host.replace(/^\//, ''),
    assignment: m.assignment,
  }));
  const owner = new Map<string, string>();
  for (const member of members) {
    for (const [topic, partitions] of Object.entries(member.assignment)) for (const p of partitions) owner.set(`${topic}/${p}`, member.memberId);
  }
  const partitions: PartitionStatus[] = [];
  const committed = new Map((await admin.committedOffsets(groupId, topics)).map((c) => [`${c.topic}/${c.partition}`, c.offset]));
  for (const topic of topics) {
    // Read committed: the end a worker can reach (the last stable offset).
    const [ends, starts] = await Promise.all([admin.listOffsets(topic, 'latest', { readCommitted: true }), admin.listOffsets(topic, 'earliest')]);
    for (const [partition, high] of [...ends].sort((a, b) => a[0] - b[0])) {
      const offset = committed.get(`${topic}/${partition}`);
      const from = offset ?? starts.get(partition) ?? 0n;
      const lag = high > from ? high - from : 0n;
      partitions.push({ topic, partition, committed: offset?.toString(), end: high.toString(), lag: lag.toString(), memberId: owner.get(`${topic}/${partition}`) });
    }
  }
  return {
    groupId,
    state: group?.state ?? 'Unknown',
    members,
    partitions,
    totalLag: partitions.reduce((sum, p) => sum + BigInt(p.lag), 0n).toString(),
  };
}

/** Plain-text rendering: one block per group. */
export function formatGroupStatus(status: GroupStatus, label: string): string {
  const lines = [`${label}  group ${status.groupId}  ${status.state}  ${status.members.length} member(s)  lag ${status.totalLag}`];
  const short = new Map(status.members.map((m, i) => [m.memberId, `m${i + 1}`]));
  for (const member of status.members) {
    const parts = Object.entries(member.assignment).map(([topic, ps]) => `${topic}[${[...ps].sort((a, b) => a - b).join(',')}]`);
    lines.push(`  ${short.get(member.memberId)}  ${member.clientId}  ${member.host}  ${parts.join(' ') || '(no partitions)'}  ${member.memberId}`);
  }
  const rows = [['topic', 'partition', 'committed', 'end', 'lag', 'member']];
  for (const p of status.partitions) {
    rows.push([p.topic, String(p.partition), p.committed ?? '-', p.end, p.lag, p.memberId === undefined ? '-' : (short.get(p.memberId) ?? '?')]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows)
    lines.push(
      `  ${row
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd()}`,
    );
  return `${lines.join('\n')}\n`;
}
