import { randomUUID } from 'node:crypto';

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'JPY'] as const;

export interface OrderPlacedInput {
  orderId: string;
  customerId: string;
  items: { sku: string; quantity: number; unitPrice: number }[];
  amount: number;
  currency: string;
  placedAt: number;
  couponCode?: string | null;
  shippingCountry?: string | null;
}

/** A random, valid OrderPlaced event as an upstream system would post it. */
export function randomOrder(overrides: Partial<OrderPlacedInput> = {}): OrderPlacedInput {
  const items = Array.from({ length: 1 + Math.floor(Math.random() * 4) }, (_, i) => ({
    sku: `SKU-${i}-${Math.floor(Math.random() * 1000)}`,
    quantity: 1 + Math.floor(Math.random() * 5),
    // At least a cent: a price rounded to 0 made an order of amount 0 now and then (about one bench pool in 50), which
    // the bench's rule `message.amount > 0` refuses, a whole batch of 100 with it, in the rules stage's timed rounds.
    unitPrice: (1 + Math.floor(Math.random() * 20000)) / 100,
  }));
  return {
    orderId: `order-${randomUUID()}`,
    customerId: `customer-${Math.floor(Math.random() * 500)}`,
    items,
    amount: Math.round(items.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0) * 100) / 100,
    currency: CURRENCIES[Math.floor(Math.random() * CURRENCIES.length)]!,
    placedAt: Date.now() - Math.floor(Math.random() * 86_400_000),
    shippingCountry: Math.random() < 0.8 ? 'DE' : null,
    ...overrides,
  };
}
