import { describe, expect, it } from 'vitest';
import { AbortedTransactions } from '../../kafka/record-codec.ts';

/** read_committed filtering of the group consumer's fetch loop: which record batches an exactly-once reader drops. */

const TRANSACTIONAL = 1 << 4;
const CONTROL = 1 << 5;
const marker = (type: 0 | 1) => {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type, 2);
  return [{ key }];
};
const data = (producerId: bigint, transactional = true) => ({ attributes: transactional ? TRANSACTIONAL : 0, producerId, records: [{ key: null }] });
const abortMarker = (producerId: bigint) => ({ attributes: TRANSACTIONAL | CONTROL, producerId, records: marker(0) });
const commitMarker = (producerId: bigint) => ({ attributes: TRANSACTIONAL | CONTROL, producerId, records: marker(1) });

describe('aborted transactions (read_committed)', () => {
  it('drops an aborted transaction up to its marker, keeps committed ones and other producers, and every control batch', () => {
    const filter = new AbortedTransactions([{ producerId: 7n, firstOffset: 10n }]);
    const kept = [
      [data(7n), 9n], // before the aborted transaction began
      [data(7n), 11n],
      [data(8n), 12n],
      [abortMarker(7n), 13n],
      [data(7n), 15n], // a later transaction of the same producer
      [commitMarker(7n), 16n],
      [data(9n, false), 17n],
    ].map(([batch, last]) => !filter.skip(batch as ReturnType<typeof data>, last as bigint));
    expect(kept).toEqual([true, false, true, false, true, false, true]);
  });

  it('drops an aborted transaction whose marker is not in this response (the client would keep it)', () => {
    const filter = new AbortedTransactions([{ producerId: 3n, firstOffset: 100n }]);
    expect(filter.skip(data(3n), 120n)).toBe(true);
    expect(filter.skip(data(3n), 140n)).toBe(true);
    expect(filter.skip(data(4n), 150n)).toBe(false);
  });

  it('keeps everything when nothing was aborted', () => {
    const filter = new AbortedTransactions(null);
    expect(filter.skip(data(1n), 5n)).toBe(false);
    expect(filter.skip(commitMarker(1n), 6n)).toBe(true);
  });
});
