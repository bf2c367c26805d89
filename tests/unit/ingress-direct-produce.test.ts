import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installSecurity } from '../../access/plugin.ts';
import { ingressRouteTable } from '../../access/route-table.ts';
import { API_CHALLENGE, SLUICE_DENIALS } from '../../access/denials.ts';
import { securityHeaders } from '../../access/security-headers.ts';
import { loadConfig } from '../../core/config.ts';
import { OverloadedError } from '../../core/errors.ts';
import { createCodec } from '../../core/formats/index.ts';
import errorMapper from '../../core/http-errors.ts';
import { createHttpMetrics, registerHttpMetrics } from '../../core/http-metrics.ts';
import { createLogger } from '../../core/logger.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';
import type { BatchingProducer } from '../../producers/batching-producer.ts';
import { registerBodyParsers } from '../../producers/body-parsers.ts';
import { correlationIdOf, stampCorrelationId } from '../../producers/correlation.ts';
import { DirectProduce } from '../../producers/direct-produce.ts';
import { ingressErrors } from '../../producers/ingress-errors.ts';
import { registerRoutes, type RouteBinding } from '../../producers/routes.ts';
import type { RouteSpec } from '../../topology/model.ts';

/**
 * The direct path (producers/direct-produce.ts) answers before Fastify: every answer it gives must be the route's,
 * byte for byte and header for header (security headers, correlation id, content type, Retry-After), refusals
 * included, recorded in the same request metrics; what it does not serve reaches Fastify untouched.
 */
const SCHEMA = JSON.stringify({ type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' } }, required: ['orderId'] });
const codec = createCodec({ schemaType: 'JSON', schema: SCHEMA, references: [] });
const binding: RouteBinding = { route: { path: '/v1/orders', topic: 'orders', key: 'orderId' } as RouteSpec, subject: 'orders-value', schemaId: 4, codec, schemaText: SCHEMA };
const BODY_LIMIT = 4096;

/** Each event answered at offset 100 + its amount; an orderId "overload" is refused as a full queue refuses. */
const written: OutgoingRecord[] = [];
const producer = {
  produce: async (records: OutgoingRecord[]) => {
    if (records.some((r) => r.key?.toString() === 'overload')) throw new OverloadedError('20 records are already waiting for Kafka (limit 10); retry shortly');
    written.push(...records);
    return records.map((r) => ({ topic: r.topic, partition: 2, offset: String(100 + (JSON.parse(r.value!.subarray(5).toString()) as { amount: number }).amount) }));
  },
} as unknown as BatchingProducer;

let app: FastifyInstance;
let url: string;
let viaFastify = 0;
let closing = false;
const rejected: string[] = [];
const metrics = createHttpMetrics(undefined, 'ingress');

beforeAll(async () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  const logger = createLogger(config, 'ingress-direct-produce');
  const direct = new DirectProduce();
  app = Fastify({
    serverFactory: (handler) => {
      const counted: RequestListener = (req, res) => {
        viaFastify += 1;
        handler(req, res);
      };
      return createServer(direct.wrap(counted));
    },
    bodyLimit: BODY_LIMIT,
    // The ingress's request ids (producers/server.ts): the caller's correlation id, else a fresh one.
    requestIdHeader: false,
    genReqId: correlationIdOf,
  });
  const errors = ingressErrors({ bodyLimit: BODY_LIMIT, produceTimeoutMs: 1000, rejected: { inc: (labels) => rejected.push(String((labels as { code: string }).code)) }, routes: ['POST /v1/orders'] });
  void app.register(errorMapper, errors);
  registerBodyParsers(app);
  registerHttpMetrics(app, { service: 'ingress', metricsPath: false, metrics });
  installSecurity(app, { service: 'ingress', config, logger, routes: ingressRouteTable(['/v1/orders']), denials: SLUICE_DENIALS, challenge: API_CHALLENGE, everyRequest: stampCorrelationId });
  registerRoutes(app, [binding], { producer });
  direct.enable({
    bindings: [binding],
    producer,
    headers: securityHeaders(config),
    bodyLimit: BODY_LIMIT,
    maxDepth: 128,
    errors,
    tallies: metrics.tallies,
    logger,
    closing: () => closing,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => app.close());

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** The headers of an answer that say something about it (not the connection's or the clock's). */
function answerHeaders(headers: Record<string, string | number | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (!['date', 'connection', 'keep-alive'].includes(name)) out[name] = String(value);
  return out;
}

/** The same request through the server (the direct path where it applies) and through Fastify's inject (the route). */
async function both(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ direct: Answer; route: Answer; tookFastify: boolean }> {
  const all = { 'content-type': 'application/json', 'x-correlation-id': 'cid-1', ...headers };
  const before = viaFastify;
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: all, body });
  const direct = { status: response.status, headers: answerHeaders(Object.fromEntries(response.headers)), text: await response.text() };
  const tookFastify = viaFastify > before;
  const injected = await app.inject({ method: 'POST', url: path, headers: all, payload: body });
  return { direct, route: { status: injected.statusCode, headers: answerHeaders(injected.headers), text: injected.body }, tookFastify };
}

describe('the direct produce path', () => {
  it('answers single events and batches, and refuses bad input, bad bytes and a full queue, exactly as the route does', async () => {
    const cases: [string, string | Buffer, number][] = [
      ['one event', JSON.stringify({ orderId: 'a', amount: 1 }), 200],
      [
        'a batch',
        JSON.stringify([
          { orderId: 'b', amount: 2 },
          { orderId: 'c', amount: 3 },
        ]),
        200,
      ],
      ['a missing field, by path', JSON.stringify({ amount: 1 }), 400],
      [
        'a bad event of a batch, by index and path',
        JSON.stringify([
          { orderId: 'd', amount: 1 },
          { orderId: 'e', amount: 'x' },
        ]),
        400,
      ],
      ['malformed JSON', '{"orderId": ', 400],
      ['an empty array', '[]', 400],
      ['invalid UTF-8 in a field', Buffer.concat([Buffer.from('{"orderId":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","amount":1}')]), 400],
      ['a number beyond a double', '{"orderId":"f","amount":1e400}', 400],
      ['a full queue', JSON.stringify({ orderId: 'overload', amount: 1 }), 503],
    ];
    for (const [name, body, status] of cases) {
      const { direct, route, tookFastify } = await both('/v1/orders', body);
      expect(tookFastify, name).toBe(false);
      expect(direct.status, name).toBe(status);
      expect(direct, name).toEqual(route);
      expect(direct.headers['x-correlation-id'], name).toBe('cid-1');
      expect(direct.headers['x-content-type-options'], name).toBe('nosniff');
    }
    const { direct } = await both('/v1/orders', JSON.stringify({ amount: 1 }));
    expect(JSON.parse(direct.text)).toMatchObject({ error: 'SLUICE_VALIDATION_FAILED', path: 'orderId' });
    const overloaded = await both('/v1/orders', JSON.stringify({ orderId: 'overload', amount: 1 }));
    expect(overloaded.direct.headers['retry-after']).toBe('1');
    // Refusals are counted once per answer, whichever path gave it.
    expect(rejected.filter((code) => code === 'SLUICE_OVERLOADED')).toHaveLength(4);
  });

  it('a fresh correlation id when the caller sends none, on the answer and on the records', async () => {
    const before = written.length;
    const response = await fetch(`${url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderId: 'g', amount: 7 }) });
    const id = response.headers.get('x-correlation-id');
    expect(response.status).toBe(200);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(written[before]!.headers?.find(([name]) => name === 'correlation-id')?.[1]?.toString()).toBe(id);
  });

  it('leaves to Fastify what it does not serve: a query, another media type, a key, no or too long a body, other paths, and everything while closing', async () => {
    const event = JSON.stringify({ orderId: 'h', amount: 1 });
    for (const [name, path, body, headers] of [
      ['?partial', '/v1/orders?partial=true', event, {}],
      ['NDJSON', '/v1/orders', event, { 'content-type': 'application/x-ndjson' }],
      ['text', '/v1/orders', event, { 'content-type': 'text/plain' }],
      ['Idempotency-Key', '/v1/orders', event, { 'idempotency-key': 'k1' }],
      ['an empty body', '/v1/orders', '', {}],
      ['beyond the body limit', '/v1/orders', JSON.stringify({ orderId: 'x'.repeat(BODY_LIMIT) }), {}],
      ['an unknown path', '/v1/elsewhere', event, {}],
    ] as const) {
      const { direct, route, tookFastify } = await both(path, body, headers);
      expect(tookFastify, name).toBe(true);
      expect(direct, name).toEqual(route);
    }
    closing = true;
    try {
      expect((await both('/v1/orders', event)).tookFastify).toBe(true);
    } finally {
      closing = false;
    }
  });

  it('records its answers in the request metrics, under the route and status', async () => {
    const count = (status: string): number => metrics.tallies.all().find((t) => t.labels.route === '/v1/orders' && t.labels.status === status)?.count ?? 0;
    const [ok, bad] = [count('200'), count('400')];
    await fetch(`${url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderId: 'i', amount: 1 }) });
    await fetch(`${url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([count('200') - ok, count('400') - bad]).toEqual([1, 1]);
  });
});
