import fc from 'fast-check';
import { NumericMap, produceV11, type MessageRecord } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { encodeProduceRequest } from '../../kafka/produce-request.ts';

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const message = fc.record({
  topic: fc.constantFrom('orders.placed', 'orders.scored', 'ö-topic'),
  partition: fc.integer({ min: 0, max: 3 }),
  key: fc.option(bytes, { nil: undefined }),
  value: bytes,
  // Often equal, as the records of one send are in the ingress.
  timestamp: fc.oneof(fc.constant(1_700_000_000_000n), fc.bigInt({ min: 1_700_000_000_000n, max: 1_700_000_100_000n })),
  // Repeated names are distinct Buffers in the Map (that is how a name keeps every value).
  headers: fc.option(fc.array(fc.tuple(fc.constantFrom('a', 'correlation-id', ''), bytes), { maxLength: 4 }), { nil: undefined }),
  // The same Map object as the record before (the ingress gives a request's records one map).
  sharesHeaders: fc.boolean(),
});

type Generated = typeof message extends fc.Arbitrary<infer T> ? T : never;

function clientMessages(generated: readonly Generated[]): MessageRecord[] {
  let previous: MessageRecord['headers'];
  return generated.map((m) => {
    const headers = m.sharesHeaders && previous !== undefined ? previous : m.headers === undefined ? undefined : new Map(m.headers.map(([name, value]) => [Buffer.from(name), value]));
    previous = headers;
    return {
      topic: m.topic,
      partition: m.partition,
      value: m.value,
      timestamp: m.timestamp,
      ...(m.key === undefined ? {} : { key: m.key }),
      ...(headers === undefined ? {} : { headers }),
    };
  });
}

describe('the one-pass produce request encoder', () => {
  it("writes the client's bytes exactly: records, headers, batches per partition, producer id, sequences (property)", () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 30 }),
        fc.constantFrom(-1, 0, 1),
        fc.option(fc.constantFrom('sluice-txn-1', 'ü'), { nil: undefined }),
        fc.boolean(),
        (generated, acks, transactionalId, idempotent) => {
          const sequences = new NumericMap();
          sequences.set('orders.placed:1', 41);
          const options = {
            ...(transactionalId === undefined ? {} : { transactionalId }),
            ...(idempotent ? { producerId: 4242n, producerEpoch: 3, sequences } : {}),
          };
          const theirs = produceV11.createRequest(acks, 30_000, clientMessages(generated), options).buffer;
          const ours = encodeProduceRequest(acks, 30_000, clientMessages(generated), options);
          expect(ours.equals(theirs)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fills in partition 0 and the current time as the client does', () => {
    const before = BigInt(Date.now());
    const messages: MessageRecord[] = [{ topic: 't', value: Buffer.from('v') }];
    encodeProduceRequest(1, 1000, messages, {});
    expect(messages[0]!.partition).toBe(0);
    expect(messages[0]!.timestamp! >= before).toBe(true);
  });
});
