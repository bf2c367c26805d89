import { createRecordsBatch, readRecordsBatches, Reader } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { decodePartition, fetchedRecords, toClientHeaders, toClientMessage } from '../../kafka/record-codec.ts';
import type { OutgoingRecord, RecordHeaders } from '../../kafka/types.ts';

/**
 * The seam's one codec, through the client's own batch writer: what toClientMessage builds is written as Kafka's
 * record batch bytes, as a fetch returns them (RawFetchConsumer), and decodePartition (or FetchedRecords, in place)
 * turns them into the KafkaRecords every reader sees. The client's own batch parser is the reference.
 */

const IS_CONTROL = 1 << 5;
const IS_TRANSACTIONAL = 1 << 4;

/** `records` as one record batch at `baseOffset`, as a fetch returns it. */
function roundTrip(records: OutgoingRecord[], baseOffset = 0n, options: { producerId?: bigint; transactional?: boolean; compression?: 'gzip' | 'snappy' | 'lz4' | 'zstd' } = {}): Buffer {
  const messages = records.map((r) => ({ ...toClientMessage(r, 0), partition: 0 })) as Parameters<typeof createRecordsBatch>[0];
  const bytes = createRecordsBatch(messages, {
    producerId: options.producerId ?? -1n,
    ...(options.transactional ? { transactionalId: 'tx' } : {}),
    ...(options.compression ? { compression: options.compression } : {}),
  }).buffer;
  // The writer leaves the first offset 0 (the broker assigns it): place the batch where the test wants it.
  bytes.writeBigInt64BE(baseOffset, 0);
  return bytes;
}

/** A commit (type 1) or abort (type 0) marker of `producerId` at `offset`, in leader epoch 3. */
function marker(producerId: bigint, offset: bigint, type: 0 | 1): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type, 2);
  const bytes = roundTrip([{ topic: 't', key, value: Buffer.alloc(6) }], offset, { producerId });
  bytes.writeInt32BE(3, 12);
  bytes.writeInt16BE(IS_CONTROL | IS_TRANSACTIONAL, 21);
  return bytes;
}

const fetched = (batches: Buffer[], aborted: { producerId: bigint; firstOffset: bigint }[] | null = null) => ({
  highWatermark: 100n,
  lastStableOffset: 90n,
  abortedTransactions: aborted,
  records: Buffer.concat(batches),
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

  it('numbers records exactly on either side of 2^53 (base offsets are numbers below it), from a fetch position inside a batch', () => {
    const records = (base: bigint) =>
      roundTrip(
        [0, 1, 2].map((i) => ({ topic: 't', value: Buffer.from(String(i)), timestamp: -1n + BigInt(i) })),
        base,
      );
    const below = 2n ** 53n - 2n ** 33n;
    for (const base of [below, 2n ** 53n - 2n, 2n ** 62n]) {
      const batch = decodePartition('t', 0, base + 1n, fetched([records(base), records(base + 3n)]), false);
      expect(batch.records.map((r) => [r.offset, r.timestamp])).toEqual([1n, 2n, 3n, 4n, 5n].map((d) => [base + d, (d % 3n) - 1n]));
      expect(batch.nextOffset).toBe(base + 6n);
      const scanned = fetchedRecords(fetched([records(base), records(base + 3n)]), base + 1n, false);
      const seen: [bigint, bigint | null, number][] = [];
      // A base offset as a number (-1: past its reach) plus the delta is the offset, exactly.
      scanned.visit((r) => seen.push([r.offset, r.baseOffsetNumber < 0 ? null : BigInt(r.baseOffsetNumber + r.offsetDelta), r.timestampMs]));
      expect(seen.map(([offset, , ms]) => [offset, ms])).toEqual([1n, 2n, 3n, 4n, 5n].map((d) => [base + d, Number(d % 3n) - 1]));
      for (const [offset, asNumber] of seen) if (asNumber !== null) expect(asNumber).toBe(offset);
      expect(seen.map(([, asNumber]) => asNumber === null)).toEqual([1, 2, 3, 4, 5].map(() => base > below));
    }
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
    const bytes = roundTrip([{ topic: 't', value: Buffer.from('v'), headers: [['', Buffer.from('w')]] }]);
    // The header's name length: 0 (zigzag 0) becomes null (zigzag -1 = 1), the same size.
    bytes[bytes.lastIndexOf(Buffer.from([0x00, 0x02, 0x77]))] = 0x01;
    expect(text(decodePartition('t', 0, 0n, fetched([bytes]), false).records[0]!.headers)).toEqual([['', 'w']]);
  });

  it("reads every field as the client's own batch parser does, over many records and codecs", () => {
    const records: OutgoingRecord[] = Array.from({ length: 300 }, (_, i) => ({
      topic: 't',
      key: i % 7 === 0 ? null : Buffer.from(`key-${i}`.repeat(i % 5)),
      value: i % 11 === 0 ? null : Buffer.from('é'.repeat(i * 3)),
      headers: Array.from({ length: i % 4 }, (_, j) => [`h${j % 2}`, j === 2 ? null : Buffer.from(`${i}-${j}`)] as const),
      // Deltas past one varint byte, and past 2^31 ms.
      timestamp: 1_700_000_000_000n + BigInt(i * i * 40_000),
    }));
    for (const compression of [undefined, 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const bytes = roundTrip(records, 1_000_000n, compression ? { compression } : {});
      const [reference] = readRecordsBatches(Reader.from(bytes));
      const read = decodePartition('t', 4, 0n, fetched([bytes]), false).records;
      expect(
        read.map((r) => [r.offset, r.timestamp, r.key, r.value, r.headers.map(([n, v]) => [Buffer.from(n), v])]),
        compression,
      ).toEqual(reference!.records.map((r) => [reference!.firstOffset + BigInt(r.offsetDelta), reference!.firstTimestamp + r.timestampDelta, r.key, r.value, r.headers.map(([n, v]) => [n, v])]));
    }
  });

  it('walks records in place, from the fetch position, at most a limit of them, and leaves a batch cut short for the next fetch', () => {
    const first = roundTrip(
      [0, 1, 2, 3].map((i) => ({ topic: 't', key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), timestamp: 100n + BigInt(i) })),
      20n,
    );
    const second = roundTrip([{ topic: 't', value: Buffer.from('cut') }], 24n);
    const scanned = fetchedRecords(fetched([first, second.subarray(0, second.length - 3)]), 21n, true);
    expect(scanned.nextOffset).toBe(24n);
    const seen: unknown[] = [];
    const visited = scanned.visit((r) => seen.push([r.offset, r.timestampMs, r.key?.toString(), r.value?.toString(), r.buffer.toString('utf8', r.valueStart, r.valueStart + r.valueLength)]), 2);
    expect(visited).toBe(2);
    expect(seen).toEqual([
      [21n, 101, 'k1', 'v1', 'v1'],
      [22n, 102, 'k2', 'v2', 'v2'],
    ]);
    expect(scanned.visit(() => undefined)).toBe(3);
  });

  it('reads the bytes in the pieces they arrived in as it reads them whole: batches inside a piece, across pieces, cut short', () => {
    const batches = [0, 1, 2, 3, 4, 5].map((b) =>
      roundTrip(
        Array.from({ length: 1 + b }, (_, i) => ({ topic: 't', key: Buffer.from(`k${b}-${i}`), value: Buffer.from(`v${b}-${i}`.repeat(b + 1)), headers: [['h', Buffer.from(`${b}`)]] as const })),
        BigInt(10 * b),
        b === 3 ? { compression: 'gzip' } : {},
      ),
    );
    const last = roundTrip([{ topic: 't', value: Buffer.from('cut short') }], 60n);
    const whole = Buffer.concat([...batches, last.subarray(0, last.length - 4)]);
    const read = (bytes: Buffer | Buffer[]) => {
      const batch = decodePartition('t', 0, 2n, { highWatermark: 0n, lastStableOffset: 0n, records: bytes }, false);
      return [batch.nextOffset, batch.leaderEpoch, batch.records.map((r) => [r.offset, r.key, r.value, text(r.headers)])];
    };
    const expected = read(whole);
    expect(expected[2]).toHaveLength(20);
    // Pieces of every size from one byte (a batch's length field split too) to more than a batch, and pieces of nothing.
    for (const size of [1, 5, 11, 12, 13, 61, 62, 100, 257, whole.length - 1]) {
      const pieces: Buffer[] = [Buffer.alloc(0)];
      for (let p = 0; p < whole.length; p += size) pieces.push(whole.subarray(p, p + size), Buffer.alloc(0));
      expect(read(pieces), `pieces of ${size}`).toEqual(expected);
    }
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
