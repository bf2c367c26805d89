import { describe, expect, it } from 'vitest';
import { splitByCounts } from '../../core/arrays.ts';

describe('splitByCounts', () => {
  it('cuts a merged list back into each caller’s run, empty runs included', () => {
    expect(splitByCounts(['a', 'b', 'c', 'd'], [1, 0, 3])).toEqual([['a'], [], ['b', 'c', 'd']]);
  });
});
