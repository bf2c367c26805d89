/**
 * Hand-written TypeScript shapes of the Avro contracts the workers read and write
 * (schemas/OrderPlaced.avsc, schemas/OrderScored.avsc), as the runtime's decoder
 * produces them. To be replaced by generated types; keep in step with the .avsc files.
 */

export type Currency = 'EUR' | 'USD' | 'GBP' | 'CHF' | 'JPY' | 'OTHER';
export type Channel = 'WEB' | 'MOBILE' | 'STORE' | 'API';
export type Verdict = 'ACCEPT' | 'REVIEW' | 'REJECT';

/** Avro longs decode to a number when exact, a BigInt beyond 2^53. */
export type AvroLong = number | bigint;

export interface LineItem {
  sku: string;
  quantity: number;
  /** Price of one unit in the order's currency. */
  unitPrice: number;
}

export interface OrderPlaced {
  orderId: string;
  customerId: string;
  items: LineItem[];
  /** Order total in the order's currency. */
  amount: number;
  currency: Currency;
  /** Epoch milliseconds. */
  placedAt: number;
  channel: Channel;
  couponCode: string | null;
  /** ISO 3166-1 alpha-2. */
  shippingCountry: string | null;
  loyaltyPoints: AvroLong;
}

export interface OrderScored {
  orderId: string;
  customerId: string;
  /** 0 (no risk) to 100 (certain fraud). */
  score: number;
  verdict: Verdict;
  reasons: string[];
  amount: number;
  currency: string;
  /** Epoch milliseconds. */
  scoredAt: number;
}
