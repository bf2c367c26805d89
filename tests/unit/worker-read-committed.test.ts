import { describe, expect, it } from 'vitest';
import { AbortedTransactions } from '../../kafka/record-codec.ts';

/** read_committed filtering of the group consumer's fetch loop: which record batches an exactly-once reader drops. */

const TRANSACTIONAL = 1 << 4;
const CONTROL = 1 << 5;
/** A batch as the filter sees it: attributes, producer and, for a control batch, its marker type (0 abort, 1 commit). */
type Batch = { attributes: number; producerId: bigint; marker?: number };
const data = (producerId: bigint, transactional = true): Batch => ({ attributes: transactional ? TRANSACTIONAL : 0, producerId });
const abortMarker = (producerId: bigint): Batch => ({ attributes: TRANSACTIONAL | CONTROL, producerId, marker: 0 });
const commitMarker = (producerId: bigint): Batch => ({ attributes: TRANSACTIONAL | CONTROL, producerId, marker: 1 });
const skips = (filter: AbortedTransactions, batch: Batch, last: bigint) => filter.skip(batch.attributes, batch.producerId, last, batch.marker);

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
    ].map(([batch, last]) => !skips(filter, batch as Batch, last as bigint));
    expect(kept).toEqual([true, false, true, false, true, false, true]);
  });

  it('drops an aborted transaction whose marker is not in this response (the client would keep it)', () => {
    const filter = new AbortedTransactions([{ producerId: 3n, firstOffset: 100n }]);
    expect(skips(filter, data(3n), 120n)).toBe(true);
    expect(skips(filter, data(3n), 140n)).toBe(true);
    expect(skips(filter, data(4n), 150n)).toBe(false);
  });

  it('keeps everything when nothing was aborted', () => {
    const filter = new AbortedTransactions(null);
    expect(skips(filter, data(1n), 5n)).toBe(false);
    expect(skips(filter, commitMarker(1n), 6n)).toBe(true);
  });
});
