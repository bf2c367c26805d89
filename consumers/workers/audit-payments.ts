import { defineWorker } from '../handler.ts';

/**
 * audit-payments: reads Protobuf payments and emits a JSON Schema audit line
 * for each, showing a worker that decodes one format and encodes another.
 */

interface Payment {
  paymentId: string;
  amountCents: number | bigint;
  currency: string;
  note: string;
}

interface PaymentAudit {
  paymentId: string;
  amountCents: number | bigint;
  currency: string;
  large: boolean;
}

export const LARGE_CENTS = 100_000;

export function audit(payment: Payment): PaymentAudit {
  return { paymentId: payment.paymentId, amountCents: payment.amountCents, currency: payment.currency, large: Number(payment.amountCents) >= LARGE_CENTS };
}

export default defineWorker<Payment, PaymentAudit>((payment) => audit(payment));
