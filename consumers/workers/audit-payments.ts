import { defineWorker } from '../handler.ts';
import type { PaymentAudit } from '../../schemas/formats/generated/PaymentAudit.ts';
import type { Payment } from '../../schemas/formats/generated/proto_payment.ts';

/**
 * audit-payments: reads Protobuf payments and emits a JSON Schema audit line
 * for each, showing a worker that decodes one format and encodes another.
 */

export const LARGE_CENTS = 100_000;

export function audit(payment: Payment): PaymentAudit {
  return { paymentId: payment.paymentId, amountCents: payment.amountCents, currency: payment.currency, large: Number(payment.amountCents) >= LARGE_CENTS };
}

export default defineWorker<Payment, PaymentAudit>((payment) => audit(payment));
