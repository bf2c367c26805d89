import { avroCodecFromTypes } from '../../core/formats/index.ts';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTypes } from '../../core/formats/avro-types.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import { IdempotencyKeyError } from '../../core/errors.ts';
import { fingerprint, parseIdempotencyKey, scopeOf } from '../../producers/idempotency.ts';
import { atomicAnswerText, parsePartial, prepareAtomic, preparePartial, type RouteBinding } from '../../producers/routes.ts';

const schemaText = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
const binding: RouteBinding = {
  route: { method: 'POST', path: '/v1/orders', topic: 'orders', key: 'orderId' },
  subject: 'orders-value',
  schemaId: 7,
  codec: avroCodecFromTypes(createTypes(schemaText)),
};
const order = (over: Record<string, unknown> = {}) => ({ orderId: 'o-1', customerId: 'c', items: [{ sku: 'S', quantity: 1, unitPrice: 1 }], amount: 1, currency: 'EUR', placedAt: 1, ...over });

describe('Idempotency-Key header', () => {
  it('accepts a structured-field string or the bare text', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(parseIdempotencyKey('abc')).toBe('abc');
  });

  it('refuses empty, spaced, too long or repeated keys with a 400 naming the header', () => {
    for (const bad of ['', '""', 'a b', 'x'.repeat(256), 'é', ['a', 'b']]) {
      expect(() => parseIdempotencyKey(bad)).toThrow(IdempotencyKeyError);
    }
    expect(() => parseIdempotencyKey('a b')).toThrow(/^Idempotency-Key: /);
  });

  it('fingerprints the mode and the body as sent', () => {
    const body = Buffer.from(JSON.stringify([order()]));
    const print = fingerprint(false, body);
    expect(fingerprint(false, Buffer.from(body))).toBe(print);
    expect(fingerprint(true, body)).not.toBe(print);
    expect(fingerprint(false, Buffer.from(JSON.stringify([order({ amount: 2 })])))).not.toBe(print);
    // The bytes count: the same events sent with other whitespace are another request.
    expect(fingerprint(false, Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 2)))).not.toBe(print);
    expect(print).toMatch(/^a[\w-]{43}$/);
  });

  it('scopes a key by route and principal', () => {
    expect(scopeOf('/v1/orders', 'alice', 'k')).not.toBe(scopeOf('/v1/orders', 'bob', 'k'));
    expect(scopeOf('/v1/orders', 'alice', 'k')).not.toBe(scopeOf('/v1/other', 'alice', 'k'));
  });
});

describe('per-record results', () => {
  it('parses partial', () => {
    expect(parsePartial({})).toBe(false);
    expect(parsePartial({ partial: 'false' })).toBe(false);
    expect(parsePartial({ partial: 'true' })).toBe(true);
    expect(() => parsePartial({ partial: '1' })).toThrow(/^partial: /);
  });

  it('writes only the valid events and answers every index', () => {
    const prepared = preparePartial(binding, [order({ orderId: 'a' }), order({ amount: 'x' }), order({ orderId: 'c' })], 'cid');
    expect(prepared.records.map((r) => r.key?.toString())).toEqual(['a', 'c']);
    const response = prepared.answer([
      { topic: 'orders', partition: 1, offset: '10' },
      { topic: 'orders', partition: 0, offset: '3' },
    ]);
    expect(response.status).toBe(207);
    expect(response.body).toEqual({
      produced: 2,
      failed: 1,
      results: [
        { index: 0, status: 200, topic: 'orders', partition: 1, offset: '10', schemaId: 7 },
        {
          index: 1,
          status: 400,
          error: 'SLUICE_VALIDATION_FAILED',
          message: expect.stringMatching(/^amount: /) as unknown,
          path: 'amount',
          errors: [{ path: 'amount', message: expect.any(String) as unknown }],
        },
        { index: 2, status: 200, topic: 'orders', partition: 0, offset: '3', schemaId: 7 },
      ],
    });
  });

  it('with every event invalid, writes nothing and still answers 207', () => {
    const prepared = preparePartial(binding, [order({ amount: 'x' })], 'cid');
    expect(prepared.records).toHaveLength(0);
    expect(prepared.answer([]).status).toBe(207);
  });

  it('all or nothing stays the default', () => {
    expect(() => prepareAtomic(binding, [order(), order({ amount: 'x' })], true, 'cid')).toThrow(/1 of 2 events are invalid/);
    expect(prepareAtomic(binding, [order()], false, 'cid').answer([{ topic: 'orders', partition: 0, offset: '1' }])).toEqual({
      status: 200,
      body: { topic: 'orders', partition: 0, offset: '1', schemaId: 7 },
    });
  });

  it("the fast path's answer text is the general path's answer, serialised, byte for byte", () => {
    const acks = [
      { topic: 'orders', partition: 0, offset: '1' },
      { topic: 'a"b\\\u2028', partition: 5, offset: '9223372036854775807' },
    ];
    for (const batch of [true, false]) {
      const events = batch ? [order(), order()] : [order()];
      const given = batch ? acks : acks.slice(0, 1);
      expect(atomicAnswerText(given, 7, batch)).toBe(JSON.stringify(prepareAtomic(binding, events, batch, 'cid').answer(given).body));
    }
  });
});
