import { describe, expect, it } from 'vitest';
import { addsPartitions, txnOffsetCommitBodies, type OutputOffset } from '../../kafka/transaction.ts';

/** The offsets of a transaction → the TxnOffsetCommit requests the seam sends (one per membership). */

const member = { groupId: 'g', memberId: 'm', generationId: 3 };
const offset = (topic: string, partition: number, next: bigint, generation = member, leaderEpoch?: number): OutputOffset => ({
  topic,
  partition,
  offset: next,
  generation,
  ...(leaderEpoch === undefined ? {} : { leaderEpoch }),
});

describe('txnOffsetCommitBodies', () => {
  it('puts every partition of every topic of one membership in one request, each topic once', () => {
    const bodies = txnOffsetCommitBodies([offset('a', 0, 10n, member, 2), offset('b', 5, 7n), offset('a', 47, 3n, member, 1)]);
    expect(bodies).toEqual([
      {
        generation: member,
        topics: [
          {
            name: 'a',
            partitions: [
              { partitionIndex: 0, committedOffset: 10n, committedLeaderEpoch: 2, committedMetadata: null },
              { partitionIndex: 47, committedOffset: 3n, committedLeaderEpoch: 1, committedMetadata: null },
            ],
          },
          { name: 'b', partitions: [{ partitionIndex: 5, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }] },
        ],
      },
    ]);
  });

  it('keeps the last offset given for a partition', () => {
    const [body] = txnOffsetCommitBodies([offset('a', 0, 10n), offset('a', 0, 12n)]);
    expect(body!.topics).toEqual([{ name: 'a', partitions: [{ partitionIndex: 0, committedOffset: 12n, committedLeaderEpoch: -1, committedMetadata: null }] }]);
  });

  it('keeps memberships apart: a generation is checked per request', () => {
    const later = { ...member, generationId: 4 };
    const bodies = txnOffsetCommitBodies([offset('a', 0, 10n), offset('a', 1, 5n, later)]);
    expect(bodies.map((b) => [b.generation.generationId, b.topics.flatMap((t) => t.partitions.map((p) => p.partitionIndex))])).toEqual([
      [3, [0]],
      [4, [1]],
    ]);
  });

  it('sends nothing for no offsets', () => {
    expect(txnOffsetCommitBodies([])).toEqual([]);
  });
});

describe('addsPartitions', () => {
  const added = new Set(['out\u00000', 'out\u00001']);
  it('says whether a send may add partitions to the transaction (then it goes alone)', () => {
    expect(addsPartitions([{ topic: 'out', partition: 0, value: null }], added)).toBe(false);
    expect(
      addsPartitions(
        [
          { topic: 'out', partition: 1, value: null },
          { topic: 'out', partition: 2, value: null },
        ],
        added,
      ),
    ).toBe(true);
    // A dead letter has no partition: the client's partitioner picks it.
    expect(addsPartitions([{ topic: 'out.dlq', value: null }], added)).toBe(true);
    expect(addsPartitions([], added)).toBe(false);
  });
});
