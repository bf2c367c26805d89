import { PositionError } from '../core/errors.ts';
import type { PartitionReader } from '../kafka/index.ts';

/** Where a tail starts reading, resolved to an exact offset per partition before it joins anything. */

export type StartPosition = { kind: 'end' } | { kind: 'beginning' } | { kind: 'offset'; offset: bigint } | { kind: 'time'; timestamp: number };

export interface PositionRequest {
  start: StartPosition;
  /** Read only this partition of each topic. */
  partition?: number;
}

export interface PartitionRange {
  topic: string;
  partition: number;
  /** First offset to read. */
  start: string;
  /** The high watermark when the tail started: records from here on are new. */
  end: string;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO-8601 time or a duration back from now (`90s`, `10m`, `2h`, `1d`), as epoch milliseconds. */
export function parseSince(text: string, now = Date.now()): number {
  const trimmed = text.trim();
  const duration = DURATION.exec(trimmed);
  if (duration) return now - Math.round(Number(duration[1]) * UNIT_MS[duration[2]!]!);
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new PositionError(`--since ${JSON.stringify(text)}: expected an ISO-8601 time (2026-11-25T10:00:00Z) or a duration such as 30s, 10m, 2h, 1d`);
}

/** What positions are resolved from: the reader that will read them, on its own connection. */
export type OffsetSource = Pick<PartitionReader, 'watermarks' | 'offsetsAt'>;

/** The start offset of every partition to read, from the topics' current offsets (and timestamps for --since). */
export async function resolvePositions(source: OffsetSource, topics: readonly string[], request: PositionRequest): Promise<PartitionRange[]> {
  const watermarks = await source.watermarks(topics);
  const byTime = request.start.kind === 'time' ? await source.offsetsAt(topics, BigInt(request.start.timestamp)) : undefined;
  const ranges: PartitionRange[] = [];
  for (const topic of topics) {
    const offsets = watermarks.get(topic) ?? [];
    const selected = request.partition === undefined ? offsets : offsets.filter((o) => o.partition === request.partition);
    if (selected.length === 0) {
      throw new PositionError(`topic ${topic} has no partition ${request.partition} (partitions 0-${offsets.length - 1})`);
    }
    for (const { partition, low, high } of selected) {
      let start: bigint;
      switch (request.start.kind) {
        case 'end':
          start = high;
          break;
        case 'beginning':
          start = low;
          break;
        case 'offset':
          // Below the log start the records are gone; the earliest kept one is the nearest truth.
          start = request.start.offset > low ? request.start.offset : low;
          break;
        case 'time': {
          // No record at or after the time: Kafka answers -1; reading starts at the end.
          const found = byTime?.get(topic)?.get(partition) ?? -1n;
          start = found < 0n ? high : found;
          break;
        }
      }
      ranges.push({ topic, partition, start: start.toString(), end: high.toString() });
    }
  }
  return ranges;
}
