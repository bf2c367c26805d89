import { describe, expect, it } from 'vitest';
import { BadParameterError } from '../../core/errors.ts';
import { formatEventId, parseEventId, parseReadQuery, parseStart } from '../../producers/read-query.ts';

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BadParameterError);
    return (error as BadParameterError).parameter;
  }
  throw new Error('expected a BadParameterError');
}

describe('read path query', () => {
  it('reads every form of from', () => {
    expect(parseStart(undefined)).toEqual({ kind: 'end' });
    expect(parseStart('beginning')).toEqual({ kind: 'beginning' });
    expect(parseStart('42')).toEqual({ kind: 'offset', offset: 42n });
    expect(parseStart('9223372036854775807')).toEqual({ kind: 'offset', offset: 9223372036854775807n });
    expect(parseStart('2026-11-30T10:00:00Z')).toEqual({ kind: 'time', timestamp: BigInt(Date.parse('2026-11-30T10:00:00Z')) });
  });

  it('names the bad parameter', () => {
    expect(refused(() => parseReadQuery({ from: 'yesterday' }))).toBe('from');
    expect(refused(() => parseReadQuery({ from: '-1' }))).toBe('from');
    expect(refused(() => parseReadQuery({ partition: 'x' }))).toBe('partition');
    expect(refused(() => parseReadQuery({ max: '0' }))).toBe('max');
    expect(refused(() => parseReadQuery({ max: ['1', '2'] }))).toBe('max');
    expect(refused(() => parseReadQuery({ where: 'value.(' }))).toBe('where');
    expect(refused(() => parseReadQuery({ where: 'x'.repeat(2000) }))).toBe('where');
    expect(refused(() => parseReadQuery({}, 'p0:1,garbage'))).toBe('Last-Event-ID');
  });

  it('compiles where and keeps max and partition', () => {
    const query = parseReadQuery({ from: 'beginning', partition: '2', max: '10', where: 'value.amount > 5' });
    expect(query.partition).toBe(2);
    expect(query.max).toBe(10);
    expect(query.where!({ value: { amount: 6 }, key: null, headers: {}, topic: 't', partition: 0, offset: 0, timestamp: 0 })).toBe(true);
    expect(query.where!({ value: { amount: 4 }, key: null, headers: {}, topic: 't', partition: 0, offset: 0, timestamp: 0 })).toBe(false);
  });

  it('event ids round-trip the positions of every partition', () => {
    const positions = new Map([
      [0, 124n],
      [1, 45n],
      [11, 9007199254740993n],
    ]);
    const id = formatEventId(positions);
    expect(id).toBe('p0:124,p1:45,p11:9007199254740993');
    expect(parseEventId(id)).toEqual(positions);
    expect(parseReadQuery({}, id).resume).toEqual(positions);
  });
});
