import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTypes } from '../../core/formats/avro-types.ts';
import { avroCodecFromTypes } from '../../core/formats/index.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import { BrokerUnavailableError, KafkaError, MalformedBodyError, OverloadedError, ValidationError } from '../../core/errors.ts';
import { stringifyJson } from '../../core/json.ts';
import { parseJsonBody, parseNdjsonBody } from '../../producers/body-parsers.ts';
import { checkEvents } from '../../producers/routes.ts';
import { httpFailure } from '../../core/http-errors.ts';
import { errorBody } from '../../producers/ingress-errors.ts';
import { toProduceError } from '../../producers/batching-producer.ts';
import { ingressProducerSettings } from '../../producers/ingress-kafka.ts';
import { retryPolicies } from '../../core/retry.ts';

const orderPlaced = avroCodecFromTypes(createTypes(readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8')));
const order = (over: Record<string, unknown> = {}) => ({
  orderId: 'o-1',
  customerId: 'c-1',
  items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }],
  amount: 19,
  currency: 'EUR',
  placedAt: 1767225600000,
  ...over,
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('ingress body parsing', () => {
  it('keeps integers beyond 2^53 exact', () => {
    const { events, batch } = parseJsonBody('{"loyaltyPoints": 9007199254740993, "small": 12}');
    expect(batch).toBe(false);
    expect(events[0]).toEqual({ loyaltyPoints: 9007199254740993n, small: 12 });
    expect(stringifyJson(events[0])).toBe('{"loyaltyPoints":9007199254740993,"small":12}');
  });

  it('reads an array as a batch and an object as one event', () => {
    expect(parseJsonBody('[{"a":1},{"a":2}]')).toEqual({ events: [{ a: 1 }, { a: 2 }], batch: true });
    expect(parseJsonBody(' {"a":1} ')).toEqual({ events: [{ a: 1 }], batch: false });
  });

  it('says where JSON is malformed', () => {
    const error = thrown(() => parseJsonBody('{"orderId": "o-1",, }'));
    expect(error).toBeInstanceOf(MalformedBodyError);
    expect((error as Error).message).toMatch(/^body is not valid JSON: .*position 18/);
  });

  it('refuses empty bodies and empty batches', () => {
    expect(thrown(() => parseJsonBody('  '))).toBeInstanceOf(MalformedBodyError);
    expect((thrown(() => parseJsonBody('[]')) as Error).message).toMatch(/empty array/);
    expect((thrown(() => parseNdjsonBody('\n\n')) as Error).message).toMatch(/no events/);
  });

  it('reads NDJSON line by line, skipping blank lines and CRLF, BigInt-safe', () => {
    const { events, batch } = parseNdjsonBody('{"a":1}\r\n\n{"a":9223372036854775807}\n');
    expect(batch).toBe(true);
    expect(events).toEqual([{ a: 1 }, { a: 9223372036854775807n }]);
  });

  it('names the NDJSON line that is malformed', () => {
    const error = thrown(() => parseNdjsonBody('{"a":1}\n{"a":2}\n{"a":\n'));
    expect(error).toBeInstanceOf(MalformedBodyError);
    expect((error as Error).message).toMatch(/^line 3 is not valid JSON/);
  });
});

describe('ingress validation and error mapping', () => {
  it('names the field path of a single bad event', () => {
    const error = thrown(() => checkEvents(orderPlaced, [order({ items: [{ sku: 'S', quantity: 'x', unitPrice: 1 }] })], false));
    expect(error).toBeInstanceOf(ValidationError);
    const body = errorBody(error as ValidationError);
    expect(body).toMatchObject({ error: 'SLUICE_VALIDATION_FAILED', path: 'items[0].quantity' });
    expect(body.message).toMatch(/^items\[0\]\.quantity: expected int/);
    expect(body.errors).toEqual([{ path: 'items[0].quantity', message: expect.stringMatching(/expected int, got "x"/) }]);
  });

  it('names every bad index of a batch', () => {
    const events = [order(), order({ amount: 'lots' }), order(), order({ colour: 'red' })];
    const body = errorBody(thrown(() => checkEvents(orderPlaced, events, true)) as ValidationError);
    expect(body.message).toMatch(/^2 of 4 events are invalid/);
    expect(body.errors).toEqual([
      { index: 1, path: 'amount', message: expect.any(String) },
      { index: 3, path: 'colour', message: expect.stringMatching(/unknown field/) },
    ]);
  });

  it('accepts valid events, including a long beyond 2^53', () => {
    expect(() => checkEvents(orderPlaced, [order({ loyaltyPoints: 9223372036854775807n })], false)).not.toThrow();
  });

  it('maps Fastify errors to coded statuses', () => {
    const RULES = { bodyLimit: 1024, mediaTypes: ['application/json'] };
    expect(httpFailure(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 'ingress', RULES)).toMatchObject({
      code: 'SLUICE_BODY_TOO_LARGE',
      statusCode: 413,
      message: expect.stringMatching(/1024 bytes/),
    });
    expect(httpFailure(Object.assign(new Error('Unsupported Media Type: text/plain'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 'ingress', RULES)).toMatchObject({
      code: 'SLUICE_UNSUPPORTED_MEDIA_TYPE',
      statusCode: 415,
    });
    expect(httpFailure(new TypeError('boom'), 'ingress', RULES)).toMatchObject({ code: 'SLUICE_INTERNAL', statusCode: 500 });
    expect(httpFailure(new OverloadedError('full'), 'ingress', RULES)).toMatchObject({ code: 'SLUICE_OVERLOADED', statusCode: 503 });
  });

  it('maps send failures: retryable Kafka errors to 503, others to 500', () => {
    const unreachable = new BrokerUnavailableError('Kafka is unreachable: connect ECONNREFUSED');
    expect(toProduceError(unreachable, 3, ['t'])).toBe(unreachable);
    const tooLarge = new KafkaError('SLUICE_KAFKA_RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE', { statusCode: 413 });
    expect(toProduceError(tooLarge, 1, ['t'])).toMatchObject({ code: 'SLUICE_KAFKA_RECORD_TOO_LARGE', statusCode: 413 });
    expect(toProduceError(new Error('odd'), 1, ['t'])).toMatchObject({ code: 'SLUICE_PRODUCE_FAILED', statusCode: 500 });
  });

  it('keeps the client retries and timeouts within the produce timeout', () => {
    for (const timeout of [100, 1000, 10_000, 60_000]) {
      const settings = ingressProducerSettings(timeout);
      const policy = retryPolicies.produce(timeout);
      expect(settings.retry).toEqual(policy);
      expect(policy.totalCeilingMs()).toBeLessThanOrEqual(Math.max(timeout / 2, policy.baseMs));
      expect(settings.requestTimeoutMs).toBeLessThanOrEqual(Math.max(500, timeout / 2));
      expect(settings.ackTimeoutMs).toBeLessThanOrEqual(Math.max(500, timeout / 2));
    }
  });
});
