import { compatibilityPartitioner } from '@platformatic/kafka';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from '../../kafka/partitioner.ts';
import { Placer, recordOffsets } from '../../kafka/producer.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';

describe('partitioner', () => {
  it('matches the Java client murmur2 test vectors', () => {
    // From Kafka's UtilsTest.testMurmur2.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it("agrees with the client's Java-compatible partitioner for any key and partition count", () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), fc.integer({ min: 1, max: 200 }), (key, partitions) => {
        const bytes = Buffer.from(key);
        expect(partitionForKey(bytes, partitions)).toBe(compatibilityPartitioner({ topic: 't' }, bytes) % partitions);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('record placement', () => {
  const rec = (topic: string, key: string | null, partition?: number): OutgoingRecord => ({
    topic,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from('v'),
    ...(partition === undefined ? {} : { partition }),
  });

  it('places keyed records by murmur2, others round-robin per topic, and keeps a given partition', () => {
    const placer = new Placer();
    const records = [rec('a', 'k1'), rec('a', null), rec('a', null), rec('b', null), rec('a', null), rec('a', null), rec('a', 'x', 2)];
    const { partitions } = placer.place(records, () => 3);
    expect([...partitions]).toEqual([partitionForKey('k1', 3), 0, 1, 0, 2, 0, 2]);
    // The round robin carries on across sends.
    expect([...placer.place([rec('a', null)], () => 3).partitions]).toEqual([1]);
  });

  it("gives each record its partition's base offset plus its rank, with 64-bit offsets", () => {
    const records = [rec('t', null, 0), rec('t', null, 1), rec('t', null, 0), rec('u', null, 0)];
    const placement = new Placer().place(records, () => 2);
    const bases = [
      { topic: 't', partition: 0, offset: 9007199254740993n },
      { topic: 't', partition: 1, offset: 7n },
      { topic: 'u', partition: 0, offset: 0n },
    ];
    expect(recordOffsets(records, placement, bases)).toEqual([
      { topic: 't', partition: 0, offset: 9007199254740993n },
      { topic: 't', partition: 1, offset: 7n },
      { topic: 't', partition: 0, offset: 9007199254740994n },
      { topic: 'u', partition: 0, offset: 0n },
    ]);
    expect(recordOffsets(records, placement, [])[0]!.offset).toBe(-1n);
    // Topics interleaved: each partition of each topic counts its own ranks.
    const mixed = [rec('t', null, 0), rec('u', null, 0), rec('t', null, 0), rec('u', null, 1), rec('u', null, 0)];
    expect([...new Placer().place(mixed, () => 2).ranks]).toEqual([0, 0, 1, 0, 1]);
  });
});
