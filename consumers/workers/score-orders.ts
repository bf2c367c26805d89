import { defineWorker } from '../handler.ts';
import type { Currency, OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored, Verdict } from '../../schemas/generated/OrderScored.ts';

/**
 * score-orders: a rule-based risk score for every placed order.
 *
 * Each rule that fires adds (or, for trust signals, subtracts) points and names
 * itself in `reasons`; the sum is clamped to 0–100. The function is pure: the
 * only time it uses is the record's timestamp, so re-processing a record after a
 * crash or a replay emits an identical OrderScored.
 */

/**
 * Fixed rates to EUR so amount thresholds mean the same in every currency.
 * Deliberately constants, not a live feed: a score must not change on replay.
 */
const EUR_PER_UNIT: Record<Currency, number> = { EUR: 1, USD: 0.92, GBP: 1.17, CHF: 1.05, JPY: 0.0062, OTHER: 1 };

export const REVIEW_AT = 40;
export const REJECT_AT = 70;

/** Points per rule, exported so tests and dashboards name the same numbers. */
export const RULES = {
  'amount-invalid': 40,
  'amount-very-high': 45,
  'amount-high': 25,
  'amount-elevated': 10,
  'amount-mismatch': 25,
  'no-items': 35,
  'many-items': 10,
  'quantity-invalid': 30,
  'quantity-spike': 20,
  'price-invalid': 25,
  'currency-unsupported': 15,
  'coupon-used': 5,
  'coupon-on-large-order': 10,
  'shipping-country-missing': 15,
  'shipping-country-invalid': 10,
  'placed-in-future': 10,
  'channel-api': 5,
  'loyal-customer': -10,
} as const satisfies Record<string, number>;

export type Reason = keyof typeof RULES;

const SPIKE_QUANTITY = 50;
const MANY_ITEMS = 20;
const LOYAL_POINTS = 1000;
/** Orders placed this far after the record was written are suspicious (clock tampering). */
const FUTURE_TOLERANCE_MS = 5 * 60_000;
const COUNTRY = /^[A-Z]{2}$/;

export function verdictFor(score: number): Verdict {
  if (score >= REJECT_AT) return 'REJECT';
  if (score >= REVIEW_AT) return 'REVIEW';
  return 'ACCEPT';
}

export function reasonsFor(order: OrderPlaced, scoredAt: number): Reason[] {
  const reasons: Reason[] = [];
  const rate = EUR_PER_UNIT[order.currency] ?? 1;

  if (!Number.isFinite(order.amount) || order.amount <= 0) {
    reasons.push('amount-invalid');
  } else {
    const eur = order.amount * rate;
    if (eur >= 10_000) reasons.push('amount-very-high');
    else if (eur >= 2_000) reasons.push('amount-high');
    else if (eur >= 500) reasons.push('amount-elevated');
  }

  if (order.items.length === 0) {
    reasons.push('no-items');
  } else {
    if (order.items.length > MANY_ITEMS) reasons.push('many-items');
    if (order.items.some((i) => i.quantity <= 0)) reasons.push('quantity-invalid');
    if (order.items.some((i) => i.quantity >= SPIKE_QUANTITY)) reasons.push('quantity-spike');
    if (order.items.some((i) => !Number.isFinite(i.unitPrice) || i.unitPrice < 0)) {
      reasons.push('price-invalid');
    } else if (Number.isFinite(order.amount)) {
      const total = order.items.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0);
      // Totals are rounded to cents upstream; allow a cent per line plus 1% for taxes and rounding.
      if (Math.abs(total - order.amount) > order.items.length * 0.01 + Math.abs(total) * 0.01) reasons.push('amount-mismatch');
    }
  }

  if (order.currency === 'OTHER') reasons.push('currency-unsupported');

  if (order.couponCode !== null && order.couponCode.trim() !== '') {
    reasons.push('coupon-used');
    if (Number.isFinite(order.amount) && order.amount * rate >= 500) reasons.push('coupon-on-large-order');
  }

  // A store sale is handed over the counter; every other channel ships.
  if (order.channel !== 'STORE') {
    if (order.shippingCountry === null || order.shippingCountry.trim() === '') reasons.push('shipping-country-missing');
    else if (!COUNTRY.test(order.shippingCountry)) reasons.push('shipping-country-invalid');
  }

  if (order.placedAt > scoredAt + FUTURE_TOLERANCE_MS) reasons.push('placed-in-future');
  if (order.channel === 'API') reasons.push('channel-api');
  if (Number(order.loyaltyPoints) >= LOYAL_POINTS) reasons.push('loyal-customer');
  return reasons;
}

export function scoreOrder(order: OrderPlaced, scoredAt: number): OrderScored {
  const reasons = reasonsFor(order, scoredAt);
  const raw = reasons.reduce((sum, r) => sum + RULES[r], 0);
  const score = Math.min(100, Math.max(0, raw));
  return {
    orderId: order.orderId,
    customerId: order.customerId,
    score,
    verdict: verdictFor(score),
    reasons,
    amount: order.amount,
    currency: order.currency,
    scoredAt,
  };
}

export default defineWorker<OrderPlaced, OrderScored>((order, context) => scoreOrder(order, context.timestamp));
