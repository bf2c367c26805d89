import { createRecordsBatch, readRecordsBatches, Reader, type RecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { decodePartition, fromClientHeaders, toClientHeaders, toClientMessage } from '../../kafka/record-codec.ts';
import type { OutgoingRecord, RecordHeaders } from '../../kafka/types.ts';

/**
 * The seam's one codec, through the client's own batch writer and reader: what
 * toClientMessage builds is written as Kafka bytes, read back as the client's
 * fetch would, and decodePartition turns it into the KafkaRecords every reader sees.
 */

const IS_CONTROL = 1 << 5;

/** Writes `records` as one record batch at `baseOffset` and reads it back as the client does for a fetch. */
function roundTrip(records: OutgoingRecord[], baseOffset = 0n, options: { producerId?: bigint; transactional?: boolean; compression?: 'gzip' | 'snappy' | 'lz4' | 'zstd' } = {}): RecordsBatch {
  const messages = records.map((r) => ({ ...toClientMessage(r, 0), partition: 0 })) as Parameters<typeof createRecordsBatch>[0];
  const bytes = createRecordsBatch(messages, {
    producerId: options.producerId ?? -1n,
    ...(options.transactional ? { transactionalId: 'tx' } : {}),
    ...(options.compression ? { compression: options.compression } : {}),
  }).buffer;
  // The writer leaves the first offset 0 (the broker assigns it): place the batch where the test wants it.
  bytes.writeBigInt64BE(baseOffset, 0);
  const [batch] = readRecordsBatches(Reader.from(bytes));
  return batch!;
}

/** A commit (type 1) or abort (type 0) marker of `producerId` at `offset`. */
function marker(producerId: bigint, offset: bigint, type: 0 | 1): RecordsBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type, 2);
  return {
    firstOffset: offset,
    length: 0,
    partitionLeaderEpoch: 3,
    magic: 2,
    crc: 0,
    attributes: IS_CONTROL | (1 << 4),
    lastOffsetDelta: 0,
    firstTimestamp: 0n,
    maxTimestamp: 0n,
    producerId,
    producerEpoch: 0,
    firstSequence: 0,
    records: [{ length: 0, attributes: 0, timestampDelta: 0n, offsetDelta: 0, key, value: Buffer.alloc(6), headers: [] }],
  };
}

const fetched = (records: RecordsBatch[], aborted: { producerId: bigint; firstOffset: bigint }[] | null = null) => ({
  highWatermark: 100n,
  lastStableOffset: 90n,
  abortedTransactions: aborted,
  records,
});

const text = (headers: RecordHeaders) => headers.map(([name, value]) => [name, value === null ? null : value.toString('utf8')]);

describe('the record codec', () => {
  it('keeps every value of a repeated header name, in order, and tells a null value from an empty one', () => {
    const headers: RecordHeaders = [
      ['a', Buffer.from('1')],
      ['b', Buffer.from('x')],
      ['a', Buffer.from('2')],
      ['e', Buffer.alloc(0)],
      ['n', null],
      ['a', Buffer.from('3')],
    ];
    const batch = decodePartition('t', 0, 0n, fetched([roundTrip([{ topic: 't', key: Buffer.from('k'), value: Buffer.from('v'), headers, timestamp: 1234n }])]), false);
    expect(batch.records).toHaveLength(1);
    const [record] = batch.records;
    expect(text(record!.headers)).toEqual([
      ['a', '1'],
      ['b', 'x'],
      ['a', '2'],
      ['e', ''],
      ['n', null],
      ['a', '3'],
    ]);
    expect(record!.key?.toString()).toBe('k');
    expect(record!.value?.toString()).toBe('v');
    expect(record!.timestamp).toBe(1234n);
  });

  it('writes and reads null keys and values as null, and keeps an empty value empty', () => {
    const batch = decodePartition(
      't',
      0,
      0n,
      fetched([
        roundTrip([
          { topic: 't', key: null, value: null },
          { topic: 't', value: Buffer.alloc(0) },
        ]),
      ]),
      false,
    );
    expect(batch.records.map((r) => [r.key, r.value === null ? null : r.value.length])).toEqual([
      [null, null],
      [null, 0],
    ]);
  });

  it('reads batches written with every compression codec the same', () => {
    const records = [
      { topic: 't', key: Buffer.from('k1'), value: Buffer.from('{"n":1}'), headers: [['h', Buffer.from('1')] as const, ['h', Buffer.from('2')] as const], timestamp: 10n },
      { topic: 't', key: Buffer.from('k2'), value: Buffer.from('{"n":2}'), timestamp: 11n },
    ];
    const plain = decodePartition('t', 0, 0n, fetched([roundTrip(records)]), false).records;
    for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const read = decodePartition('t', 0, 0n, fetched([roundTrip(records, 0n, { compression })]), false).records;
      expect(
        read.map((r) => ({ ...r, headers: text(r.headers) })),
        compression,
      ).toEqual(plain.map((r) => ({ ...r, headers: text(r.headers) })));
    }
  });

  it('numbers records from the batch offset, skips those before the fetch position and moves past the whole batch', () => {
    const batch = decodePartition(
      't',
      2,
      12n,
      fetched([
        roundTrip(
          [0, 1, 2, 3, 4].map((i) => ({ topic: 't', value: Buffer.from(String(i)) })),
          10n,
        ),
      ]),
      false,
    );
    expect(batch.records.map((r) => [r.partition, r.offset, r.value?.toString()])).toEqual([
      [2, 12n, '2'],
      [2, 13n, '3'],
      [2, 14n, '4'],
    ]);
    expect(batch.nextOffset).toBe(15n);
    expect(batch.highWatermark).toBe(100n);
    expect(batch.lastStableOffset).toBe(90n);
  });

  it('leaves out control records and, read committed, the records of aborted transactions, but moves past them', () => {
    const committed = roundTrip([{ topic: 't', value: Buffer.from('c') }], 0n, { producerId: 7n, transactional: true });
    const aborted = roundTrip([{ topic: 't', value: Buffer.from('a') }], 2n, { producerId: 7n, transactional: true });
    const plain = roundTrip([{ topic: 't', value: Buffer.from('p') }], 4n);
    const batches = [committed, marker(7n, 1n, 1), aborted, marker(7n, 3n, 0), plain];

    const readCommitted = decodePartition('t', 0, 0n, fetched(batches, [{ producerId: 7n, firstOffset: 2n }]), true);
    expect(readCommitted.records.map((r) => [r.offset, r.value?.toString()])).toEqual([
      [0n, 'c'],
      [4n, 'p'],
    ]);
    expect(readCommitted.nextOffset).toBe(5n);

    // read_uncommitted: the aborted records are there, the markers still are not.
    const uncommitted = decodePartition('t', 0, 0n, fetched(batches, [{ producerId: 7n, firstOffset: 2n }]), false);
    expect(uncommitted.records.map((r) => r.value?.toString())).toEqual(['c', 'a', 'p']);
  });

  it('gives a fetch of nothing but markers no records and the offset after them', () => {
    const batch = decodePartition('t', 0, 5n, fetched([marker(7n, 5n, 1), marker(8n, 6n, 0)]), true);
    expect(batch.records).toEqual([]);
    expect(batch.nextOffset).toBe(7n);
    expect(batch.leaderEpoch).toBe(-1);
  });

  it('maps a null header name (which no Kafka client writes) to the empty name, keeping its value', () => {
    expect(text(fromClientHeaders([[null, Buffer.from('v')]]))).toEqual([['', 'v']]);
  });

  it('builds one client header map per header list, with a distinct name per pair', () => {
    const headers: RecordHeaders = [
      ['a', Buffer.from('1')],
      ['a', Buffer.from('2')],
    ];
    const map = toClientHeaders(headers)!;
    expect([...map].map(([name, value]) => [name.toString(), value.toString()])).toEqual([
      ['a', '1'],
      ['a', '2'],
    ]);
    expect(toClientHeaders(headers)).toBe(map);
    expect(toClientHeaders([])).toBeUndefined();
    expect(toClientMessage({ topic: 't', value: null }).partition).toBeUndefined();
    expect(toClientMessage({ topic: 't', partition: 3, value: null }).partition).toBe(3);
    expect(toClientMessage({ topic: 't', partition: 3, value: null }, 1).partition).toBe(1);
  });
});
