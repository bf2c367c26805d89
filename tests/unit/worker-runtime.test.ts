import { describe, expect, it } from 'vitest';
import { DecodeError, RetryableError, ValidationError } from '../../core/errors.ts';
import { defineWorker, emit, normalizeOutputs } from '../../consumers/handler.ts';
import { correlationIdOf, deadLetterHeaders, deadLetterRecord, DLQ_HEADERS, errorClassName, headersToStrings } from '../../consumers/headers.ts';
import { WorkerConfigError } from '../../core/errors.ts';
import { loadHandler } from '../../consumers/start-worker.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import type { WorkerSpec } from '../../topology/model.ts';

describe('handler output normalisation', () => {
  it('emits nothing for undefined or an empty list', () => {
    expect(normalizeOutputs(undefined, 'k')).toEqual([]);
    expect(normalizeOutputs([], 'k')).toEqual([]);
  });

  it('gives a plain value the input key and no headers', () => {
    expect(normalizeOutputs({ a: 1 }, 'k')).toEqual([{ key: 'k', value: { a: 1 }, headers: {} }]);
  });

  it('keeps the input key as given (bytes stay bytes) when the handler does not choose one', () => {
    const key = Buffer.from([0xff, 0x00, 0xfe]);
    expect(normalizeOutputs([{ a: 1 }, emit({ a: 2 }, { headers: { h: 'v' } })], key)).toEqual([
      { key, value: { a: 1 }, headers: {} },
      { key, value: { a: 2 }, headers: { h: 'v' } },
    ]);
  });

  it('lets emit() override the key, including to null, and keeps the order of a list', () => {
    const out = normalizeOutputs([emit(1, { key: 'other' }), 2, emit(3, { key: null })], 'k');
    expect(out.map((o) => [o.key, o.value])).toEqual([
      ['other', 1],
      ['k', 2],
      [null, 3],
    ]);
  });

  it('never mistakes a value with key and value fields for an envelope', () => {
    const value = { key: 'not-a-key', value: 42 };
    expect(normalizeOutputs(value, 'k')).toEqual([{ key: 'k', value, headers: {} }]);
  });

  it('defineWorker returns the handler unchanged', () => {
    const handler = (n: number) => n + 1;
    expect(defineWorker<number, number>(handler)).toBe(handler);
  });
});

describe('record headers', () => {
  it('decodes header bytes as UTF-8 and keeps the last of a repeated header', () => {
    expect(
      headersToStrings([
        ['a', Buffer.from('é')],
        ['b', Buffer.from('x')],
        ['c', Buffer.from('1')],
        ['c', Buffer.from('2')],
      ]),
    ).toEqual({ a: 'é', b: 'x', c: '2' });
    expect(headersToStrings([])).toEqual({});
  });

  it('takes the correlation id from the record, or derives a stable one from its position', () => {
    const source = { topic: 't', partition: 3, offset: 42n };
    expect(correlationIdOf({ 'correlation-id': 'abc' }, source)).toBe('abc');
    expect(correlationIdOf({ 'x-correlation-id': 'xyz' }, source)).toBe('xyz');
    expect(correlationIdOf({}, source)).toBe('t/3/42');
    expect(correlationIdOf({ 'correlation-id': '' }, source)).toBe('t/3/42');
  });
});

describe('dead letters', () => {
  const record = {
    topic: 'orders.placed',
    partition: 2,
    key: Buffer.from('order-1'),
    value: Buffer.from([1, 2, 3]),
    offset: 17n,
    timestamp: 1767225600000n,
    headers: [
      ['correlation-id', Buffer.from('corr-1')],
      [DLQ_HEADERS.errorCode, Buffer.from('STALE')],
    ] as [string, Buffer][],
  };
  const failedAt = new Date('2026-01-01T00:00:05.000Z');
  const text = (headers: readonly (readonly [string, Buffer | null])[]) => headers.map(([name, value]) => [name, value?.toString('utf8')]);

  it('names the error and where the record came from, keeping the original headers', () => {
    const headers = deadLetterHeaders(record, new DecodeError('bad magic byte'), failedAt);
    expect(text(headers)).toEqual([
      ['correlation-id', 'corr-1'],
      ['sluice.error.class', 'DecodeError'],
      ['sluice.error.code', 'SLUICE_DECODE_FAILED'],
      ['sluice.error.message', 'bad magic byte'],
      ['sluice.original.topic', 'orders.placed'],
      ['sluice.original.partition', '2'],
      ['sluice.original.offset', '17'],
      ['sluice.original.timestamp', '1767225600000'],
      ['sluice.failed.at', '2026-01-01T00:00:05.000Z'],
    ]);
    expect(headers[0]![1]).toBe(record.headers[0]![1]);
  });

  it('drops a stale error code from an earlier failure when the new error has none', () => {
    const headers = new Map(text(deadLetterHeaders(record, new TypeError('x is undefined'), failedAt)) as [string, string][]);
    expect(headers.get('sluice.error.class')).toBe('TypeError');
    expect(headers.has('sluice.error.code')).toBe(false);
  });

  it('copes with thrown non-errors and bounds huge messages', () => {
    const thrown = new Map(text(deadLetterHeaders({ ...record, headers: [] }, 'plain string', failedAt)) as [string, string][]);
    expect(thrown.get('sluice.error.class')).toBe('string');
    expect(thrown.get('sluice.error.message')).toBe('plain string');
    const huge = new Map(text(deadLetterHeaders(record, new Error('x'.repeat(100_000)), failedAt)) as [string, string][]);
    expect(huge.get('sluice.error.message')!.length).toBe(4096);
  });

  it('keeps the original key and value bytes, for the dead-letter topic', () => {
    const dead = deadLetterRecord(record, 'orders.placed.dlq', new ValidationError([{ path: 'score', message: 'bad' }]), failedAt);
    expect(dead.topic).toBe('orders.placed.dlq');
    expect(dead.key).toBe(record.key);
    expect(dead.value).toBe(record.value);
    expect(new Map(text(dead.headers!) as [string, string][]).get('sluice.error.code')).toBe('SLUICE_VALIDATION_FAILED');
  });

  it('classes errors by their name', () => {
    expect(errorClassName(new RetryableError('later'))).toBe('RetryableError');
    expect(errorClassName(null)).toBe('null');
  });
});

describe('handler loading', () => {
  const spec = (handler: string): WorkerSpec => ({
    name: 'w',
    input: 'i',
    output: 'o',
    deadLetter: 'd',
    groupId: 'g',
    handler,
    delivery: 'at-least-once',
  });

  it('loads the default export of a handler module', async () => {
    const handler = await loadHandler(spec(`${PROJECT_ROOT}/consumers/workers/score-orders.ts`));
    expect(typeof handler).toBe('function');
  });

  it('refuses a module without a default export function', async () => {
    await expect(loadHandler(spec(`${PROJECT_ROOT}/schemas/generated/OrderScored.ts`))).rejects.toThrow(WorkerConfigError);
    await expect(loadHandler(spec(`${PROJECT_ROOT}/consumers/workers/missing.ts`))).rejects.toThrow(/cannot load handler module/);
  });
});
