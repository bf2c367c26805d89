/**
 * The data contract the ingress's unit tests register for their orders subject: a CEL_FIELD mask of fields tagged
 * PII, a CEL condition that refuses (ERROR), and one that dead-letters to `orders-review` (DLQ).
 */
export const ORDER_RULES = {
  metadata: { tags: { '**.ssn': ['PII'] } },
  ruleSet: {
    domainRules: [
      { name: 'mask-pii', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" },
      { name: 'positive', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0' },
      { name: 'small', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount < 1000.0', onFailure: 'DLQ', params: { 'dlq.topic': 'orders-review' } },
    ],
  },
};
