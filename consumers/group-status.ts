import { AssignerProtocol, type Admin } from 'kafkajs';

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

function decodeAssignment(raw: Buffer): Record<string, number[]> {
  if (raw.length === 0) return {};
  return AssignerProtocol.MemberAssignment.decode(raw)?.assignment ?? {};
}

export async function groupStatus(admin: Admin, groupId: string, topics: readonly string[]): Promise<GroupStatus> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  const members: MemberStatus[] = (group?.members ?? []).map((m) => ({
    memberId: m.memberId,
    clientId: m.clientId,
    host: m.clientHost.replace(/^\//, ''),
    assignment: decodeAssignment(m.memberAssignment),
  }));
  const owner = new Map<string, string>();
  for (const member of members) {
    for (const [topic, partitions] of Object.entries(member.assignment)) for (const p of partitions) owner.set(`${topic}/${p}`, member.memberId);
  }
  const partitions: PartitionStatus[] = [];
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic);
    const byPartition = new Map(committed.find((t) => t.topic === topic)?.partitions.map((p) => [p.partition, p.offset]));
    for (const { partition, high, low } of ends.sort((a, b) => a.partition - b.partition)) {
      const offset = byPartition.get(partition);
      const has = offset !== undefined && BigInt(offset) >= 0n;
      const from = has ? BigInt(offset) : BigInt(low);
      const lag = BigInt(high) > from ? BigInt(high) - from : 0n;
      partitions.push({ topic, partition, committed: has ? offset : undefined, end: high, lag: lag.toString(), memberId: owner.get(`${topic}/${partition}`) });
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
