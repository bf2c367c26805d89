import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { createTypes } from '../../core/avro.ts';
import { avroCodecFromTypes } from '../../core/formats/index.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import { BrokerUnavailableError, MalformedBodyError, OverloadedError, ValidationError } from '../../core/errors.ts';
import { stringifyJson } from '../../core/json.ts';
import { parseJsonBody, parseNdjsonBody } from '../../producers/body-parsers.ts';
import { murmur2, partitionForKey } from '../../producers/partitioner.ts';
import { checkEvents } from '../../producers/routes.ts';
import { errorBody, toSluiceError } from '../../producers/server.ts';
import { toProduceError } from '../../producers/batching-producer.ts';
import { kafkaBudget } from '../../producers/kafka-connection.ts';

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

describe('ingress partitioner', () => {
  it('matches the Java client murmur2 test vectors', () => {
    // From Kafka's UtilsTest.testMurmur2.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it('agrees with kafkajs DefaultPartitioner for any key and partition count', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), fc.integer({ min: 1, max: 200 }), (key, partitions) => {
        const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
        const args: PartitionerArgs = { topic: 't', partitionMetadata, message: { key, value: null } };
        expect(partitionForKey(key, partitions)).toBe(kafkajs(args));
      }),
      { numRuns: 2000 },
    );
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
    expect(toSluiceError(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 1024)).toMatchObject({
      code: 'SLUICE_BODY_TOO_LARGE',
      statusCode: 413,
      message: expect.stringMatching(/1024 bytes/),
    });
    expect(toSluiceError(Object.assign(new Error('Unsupported Media Type: text/plain'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 1024)).toMatchObject({
      code: 'SLUICE_UNSUPPORTED_MEDIA_TYPE',
      statusCode: 415,
    });
    expect(toSluiceError(new TypeError('boom'), 1024)).toMatchObject({ code: 'SLUICE_INTERNAL', statusCode: 500 });
    expect(toSluiceError(new OverloadedError('full'), 1024)).toMatchObject({ code: 'SLUICE_OVERLOADED', statusCode: 503 });
  });

  it('maps send failures: retryable kafkajs errors to 503, others to 500', () => {
    const connection = Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSNumberOfRetriesExceeded' });
    expect(toProduceError(connection, 3, ['t'])).toBeInstanceOf(BrokerUnavailableError);
    const tooLarge = Object.assign(new Error('The request included a message larger than the max message size'), { name: 'KafkaJSNonRetriableError', retriable: false });
    expect(toProduceError(tooLarge, 1, ['t'])).toMatchObject({ code: 'SLUICE_PRODUCE_FAILED', statusCode: 500 });
  });

  it('keeps kafkajs retries within the produce timeout', () => {
    for (const timeout of [100, 1000, 10_000, 60_000]) {
      const { retry, client } = kafkaBudget(timeout);
      let waited = 0;
      let wait = retry.initialRetryTime!;
      for (let i = 0; i < retry.retries!; i++) {
        waited += wait;
        wait = Math.min(wait * 2, retry.maxRetryTime!);
      }
      expect(retry.retries).toBeGreaterThanOrEqual(1);
      expect(waited).toBeLessThanOrEqual(Math.max(timeout / 2, retry.initialRetryTime!));
      expect(client.requestTimeout).toBeLessThanOrEqual(Math.max(500, timeout / 2));
    }
  });
});
