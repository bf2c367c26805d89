import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTypes, validateAvro } from '../../core/formats/avro-types.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import handler, { RULES, scoreOrder, verdictFor } from '../../consumers/workers/score-orders.ts';
import type { HandlerContext } from '../../consumers/handler.ts';
import type { Currency, OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import { createLogger } from '../../core/logger.ts';

const orderScored = createTypes(readFileSync(`${PROJECT_ROOT}/schemas/OrderScored.avsc`, 'utf8'));
const orderPlaced = createTypes(readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8'));

const T = Date.UTC(2026, 0, 1);

function order(overrides: Partial<OrderPlaced> = {}): OrderPlaced {
  return {
    orderId: 'o-1',
    customerId: 'c-1',
    items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 20 }],
    amount: 40,
    currency: 'EUR',
    placedAt: T - 1000,
    channel: 'WEB',
    couponCode: null,
    shippingCountry: 'DE',
    loyaltyPoints: 0,
    ...overrides,
  };
}

const currencies: Currency[] = ['EUR', 'USD', 'GBP', 'CHF', 'JPY', 'OTHER'];

const arbOrder: fc.Arbitrary<OrderPlaced> = fc.record({
  orderId: fc.string({ minLength: 1 }),
  customerId: fc.string(),
  items: fc.array(fc.record({ sku: fc.string(), quantity: fc.integer({ min: -5, max: 500 }), unitPrice: fc.double({ min: -10, max: 1e6 }) }), { maxLength: 30 }),
  // Avro doubles can carry NaN and infinities; the score must stay in range for them too.
  amount: fc.oneof(fc.double(), fc.double({ min: 0, max: 1e6, noNaN: true })),
  currency: fc.constantFrom(...currencies),
  placedAt: fc.integer({ min: 0, max: 2 ** 42 }),
  channel: fc.constantFrom('WEB', 'MOBILE', 'STORE', 'API'),
  couponCode: fc.option(fc.string(), { nil: null }),
  shippingCountry: fc.option(fc.oneof(fc.constantFrom('DE', 'FR', 'US'), fc.string()), { nil: null }),
  loyaltyPoints: fc.oneof(fc.integer({ min: 0, max: 1e7 }), fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n })),
});

describe('score-orders rules', () => {
  it('accepts an ordinary order with no reasons', () => {
    expect(scoreOrder(order(), T)).toEqual({
      orderId: 'o-1',
      customerId: 'c-1',
      score: 0,
      verdict: 'ACCEPT',
      reasons: [],
      amount: 40,
      currency: 'EUR',
      scoredAt: T,
    });
  });

  it('converts amounts to EUR before applying thresholds', () => {
    const items = [{ sku: 'x', quantity: 1, unitPrice: 1_000_000 }];
    // 1,000,000 JPY is about 6,200 EUR: high, not very high; the same number in EUR is very high.
    expect(scoreOrder(order({ currency: 'JPY', amount: 1_000_000, items }), T).reasons).toEqual(['amount-high']);
    expect(scoreOrder(order({ currency: 'EUR', amount: 1_000_000, items }), T).reasons).toEqual(['amount-very-high']);
    expect(scoreOrder(order({ amount: 600, items: [{ sku: 'x', quantity: 1, unitPrice: 600 }] }), T).reasons).toEqual(['amount-elevated']);
  });

  it('rejects a large bulk order with a coupon, an unknown currency and nowhere to ship, capped at 100', () => {
    const scored = scoreOrder(order({ amount: 12_000, items: [{ sku: 'x', quantity: 60, unitPrice: 200 }], couponCode: 'FREE', currency: 'OTHER', shippingCountry: null }), T);
    expect(scored.reasons).toEqual(['amount-very-high', 'quantity-spike', 'currency-unsupported', 'coupon-used', 'coupon-on-large-order', 'shipping-country-missing']);
    // 45 + 20 + 15 + 5 + 10 + 15 = 110 points, clamped.
    expect(scored.score).toBe(100);
    expect(scored.verdict).toBe('REJECT');
  });

  it('flags quantity spikes, empty and mismatched baskets, and invalid quantities', () => {
    expect(scoreOrder(order({ items: [{ sku: 'x', quantity: 80, unitPrice: 0.5 }] }), T).reasons).toEqual(['quantity-spike']);
    expect(scoreOrder(order({ items: [] }), T).reasons).toEqual(['no-items']);
    expect(scoreOrder(order({ amount: 10 }), T).reasons).toEqual(['amount-mismatch']);
    expect(
      scoreOrder(
        order({
          items: [
            { sku: 'x', quantity: 0, unitPrice: 20 },
            { sku: 'y', quantity: 2, unitPrice: 20 },
          ],
        }),
        T,
      ).reasons,
    ).toEqual(['quantity-invalid']);
    const many = Array.from({ length: 21 }, (_, i) => ({ sku: `s${i}`, quantity: 1, unitPrice: 1 }));
    expect(scoreOrder(order({ items: many, amount: 21 }), T).reasons).toEqual(['many-items']);
  });

  it('needs a shipping country except for store sales, and checks its shape', () => {
    expect(scoreOrder(order({ shippingCountry: null }), T).reasons).toEqual(['shipping-country-missing']);
    expect(scoreOrder(order({ shippingCountry: null, channel: 'STORE' }), T).reasons).toEqual([]);
    expect(scoreOrder(order({ shippingCountry: 'Germany' }), T).reasons).toEqual(['shipping-country-invalid']);
  });

  it('lowers the score of loyal customers but never below 0', () => {
    const risky = order({ shippingCountry: null, couponCode: 'X' });
    expect(scoreOrder(risky, T).score).toBe(RULES['shipping-country-missing'] + RULES['coupon-used']);
    expect(scoreOrder({ ...risky, loyaltyPoints: 5000 }, T).score).toBe(RULES['shipping-country-missing'] + RULES['coupon-used'] + RULES['loyal-customer']);
    expect(scoreOrder(order({ loyaltyPoints: 2n ** 60n }), T)).toMatchObject({ score: 0, reasons: ['loyal-customer'] });
  });

  it('flags orders placed well after the record was written', () => {
    expect(scoreOrder(order({ placedAt: T + 60 * 60_000 }), T).reasons).toEqual(['placed-in-future']);
    expect(scoreOrder(order({ placedAt: T + 60_000 }), T).reasons).toEqual([]);
  });

  it('maps scores to verdicts at the thresholds', () => {
    expect([0, 39.9, 40, 69, 70, 100].map(verdictFor)).toEqual(['ACCEPT', 'ACCEPT', 'REVIEW', 'REVIEW', 'REJECT', 'REJECT']);
  });
});

describe('score-orders properties', () => {
  it('score is within 0-100, the verdict follows the score, and the result is a valid OrderScored', () => {
    fc.assert(
      fc.property(arbOrder, fc.integer({ min: 0, max: 2 ** 42 }), (o, at) => {
        const scored = scoreOrder(o, at);
        expect(scored.score).toBeGreaterThanOrEqual(0);
        expect(scored.score).toBeLessThanOrEqual(100);
        expect(scored.verdict).toBe(verdictFor(scored.score));
        expect(new Set(scored.reasons).size).toBe(scored.reasons.length);
        expect(validateAvro(orderScored, scored)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic: the same order and record time give the same event', () => {
    fc.assert(
      fc.property(arbOrder, fc.integer({ min: 0, max: 2 ** 42 }), (o, at) => {
        expect(scoreOrder(structuredClone(o), at)).toEqual(scoreOrder(o, at));
      }),
      { numRuns: 300 },
    );
  });

  it('dropping the shipping country never lowers the score of a shipped order', () => {
    fc.assert(
      fc.property(arbOrder, (o) => {
        fc.pre(o.channel !== 'STORE');
        expect(scoreOrder({ ...o, shippingCountry: null }, T).score).toBeGreaterThanOrEqual(scoreOrder({ ...o, shippingCountry: 'DE' }, T).score);
      }),
    );
  });

  it('every generated order is itself a valid OrderPlaced (the generator tests what the worker can receive)', () => {
    fc.assert(
      fc.property(arbOrder, (o) => {
        expect(validateAvro(orderPlaced, o)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('score-orders handler module', () => {
  it('takes scoredAt from the record timestamp, not the clock', async () => {
    const context: HandlerContext = {
      topic: 'orders.placed',
      partition: 0,
      offset: '7',
      key: 'o-1',
      timestamp: T,
      headers: {},
      correlationId: 'c',
      log: createLogger({ logLevel: 'silent', logFormat: 'json', instanceId: 'test' }, 'test'),
    };
    expect(await handler(order(), context)).toMatchObject({ orderId: 'o-1', scoredAt: T });
  });
});
