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
import { registerHttpMetrics, type HttpMetrics } from '../../core/http-metrics.ts';
import { createLogger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';
import type { BatchingProducer, RecordAck } from '../../producers/batching-producer.ts';
import { registerBodyParsers } from '../../producers/body-parsers.ts';
import { correlationIdOf, stampCorrelationId } from '../../producers/correlation.ts';
import { DirectProduce } from '../../producers/direct-produce.ts';
import { Idempotency } from '../../producers/idempotency.ts';
import { ingressErrors } from '../../producers/ingress-errors.ts';
import { registerRoutes, type ProduceContext, type RouteBinding } from '../../producers/routes.ts';
import { SubjectContracts } from '../../rules/index.ts';
import type { RouteSpec } from '../../topology/model.ts';
import { MemoryClaims } from '../support/memory-claims.ts';
import { ORDER_RULES } from '../support/order-rules.ts';

/**
 * The direct path (producers/direct-produce.ts) answers before Fastify: every answer it gives must be the route's,
 * byte for byte and header for header (security headers, correlation id, content type, Retry-After,
 * idempotent-replayed), refusals included, recorded in the same request metrics; what it does not serve reaches
 * Fastify untouched. Its WRITE rules and Idempotency-Key requests run through the routes' own contracts and
 * Idempotency object.
 */
const SCHEMA = JSON.stringify({ type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' }, ssn: { type: 'string' } }, required: ['orderId'] });
const codec = createCodec({ schemaType: 'JSON', schema: SCHEMA, references: [] });
const route = (path: string, topic: string, subject: string, schemaId: number): RouteBinding => ({
  route: { path, topic, key: 'orderId' } as RouteSpec,
  subject,
  schemaId,
  codec,
  schemaText: SCHEMA,
});
const binding = route('/v1/orders', 'orders', 'orders-value', 4);
/** CEL rules (synchronous): mask, refuse (ERROR), dead-letter (DLQ). */
const ruled = route('/v1/ruled', 'ruled', 'ruled-value', 5);
/** A JSONATA transform: its run is a Promise. */
const jsonata = route('/v1/jsonata', 'jsonata', 'jsonata-value', 6);
const BODY_LIMIT = 4096;

const JSONATA_RULES = { ruleSet: { domainRules: [{ name: 'hide', kind: 'TRANSFORM', mode: 'WRITE', type: 'JSONATA', expr: "$merge([$, {'ssn': 'hidden'}])" }] } };
const registry = {
  request: async (_method: string, path: string) =>
    path.includes('ruled') ? { id: 7, version: 2, ...ORDER_RULES } : path.includes('jsonata') ? { id: 8, version: 3, ...JSONATA_RULES } : { id: 4, version: 1 },
} as unknown as RegistryClient;

/**
 * Each event answered at offset 100 + its amount (the same offsets whichever path sent it); an orderId "overload" is
 * refused as a full queue refuses; an orderId "hold" waits until `release` is called.
 */
const written: { record: OutgoingRecord; ack: RecordAck }[] = [];
const amountOf = (value: Buffer): number => (JSON.parse((value[0] === 0 ? value.subarray(5) : value).toString()) as { amount: number }).amount;
let holding: { reached: () => void; release: Promise<void> } | undefined;
const producer = {
  produce: async (records: OutgoingRecord[]) => {
    if (records.some((r) => r.key?.toString() === 'overload')) throw new OverloadedError('20 records are already waiting for Kafka (limit 10); retry shortly');
    if (holding !== undefined && records.some((r) => r.key?.toString() === 'hold')) {
      holding.reached();
      await holding.release;
    }
    return records.map((record) => {
      const ack = { topic: record.topic, partition: 2, offset: String(100 + amountOf(record.value!)) };
      written.push({ record, ack });
      return ack;
    });
  },
} as unknown as BatchingProducer;

let app: FastifyInstance;
let url: string;
let viaFastify = 0;
let closing = false;
const rejected: string[] = [];
let metrics: HttpMetrics;

beforeAll(async () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  const logger = createLogger(config, 'ingress-direct-produce');
  const contracts = new SubjectContracts(registry, [binding, ruled, jsonata], logger);
  await contracts.refresh();
  const claims = new MemoryClaims(written);
  // One context for both paths, as the ingress has (producers/server.ts).
  const context: ProduceContext = { producer, contracts, idempotency: new Idempotency(claims, claims, producer, { owner: 'here', timeoutMs: 5000 }) };
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
  const errors = ingressErrors({
    bodyLimit: BODY_LIMIT,
    produceTimeoutMs: 1000,
    rejected: { inc: (labels) => rejected.push(String((labels as { code: string }).code)) },
    routes: ['POST /v1/orders', 'POST /v1/ruled', 'POST /v1/jsonata'],
  });
  void app.register(errorMapper, errors);
  registerBodyParsers(app);
  metrics = registerHttpMetrics(app, { service: 'ingress', metricsPath: false });
  installSecurity(app, {
    service: 'ingress',
    config,
    logger,
    routes: ingressRouteTable(['/v1/orders', '/v1/ruled', '/v1/jsonata']),
    denials: SLUICE_DENIALS,
    challenge: API_CHALLENGE,
    everyRequest: stampCorrelationId,
  });
  registerRoutes(app, [binding, ruled, jsonata], context);
  direct.enable({
    bindings: [binding, ruled, jsonata],
    context,
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

/**
 * The same request through the server (the direct path where it applies) and through Fastify's inject (the route);
 * `routeHeaders` replace some of the headers for the route's (another Idempotency-Key, so each is a key's first).
 */
async function both(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  routeHeaders: Record<string, string> = {},
): Promise<{ direct: Answer; route: Answer; tookFastify: boolean }> {
  const all = { 'content-type': 'application/json', 'x-correlation-id': 'cid-1', ...headers };
  const before = viaFastify;
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: all, body });
  const direct = { status: response.status, headers: answerHeaders(Object.fromEntries(response.headers)), text: await response.text() };
  const tookFastify = viaFastify > before;
  const injected = await app.inject({ method: 'POST', url: path, headers: { ...all, ...routeHeaders }, payload: body });
  return { direct, route: { status: injected.statusCode, headers: answerHeaders(injected.headers), text: injected.body }, tookFastify };
}

/** `both`, checked: the direct path took it, with the status given, and answered exactly as the route. */
async function same(name: string, path: string, body: unknown, status: number, headers: Record<string, string> = {}, routeHeaders: Record<string, string> = {}): Promise<Answer> {
  const { direct, route, tookFastify } = await both(path, JSON.stringify(body), headers, routeHeaders);
  expect(tookFastify, name).toBe(false);
  expect(direct.status, `${name}: ${direct.text}`).toBe(status);
  expect(direct, name).toEqual(route);
  return direct;
}

/** The records written while `run` ran: topic, key and the value as JSON. */
async function writes(run: () => Promise<unknown>): Promise<{ topic: string; key: string | undefined; value: unknown; schemaId?: number }[]> {
  const before = written.length;
  await run();
  return written.slice(before).map(({ record }) => ({
    topic: record.topic,
    key: record.key?.toString(),
    value: JSON.parse((record.value![0] === 0 ? record.value!.subarray(5) : record.value!).toString()) as unknown,
    ...(record.value![0] === 0 ? { schemaId: record.value!.readUInt32BE(1) } : {}),
  }));
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
    expect(written[before]!.record.headers?.find(([name]) => name === 'correlation-id')?.[1]?.toString()).toBe(id);
  });

  it('leaves to Fastify what it does not serve: a query, another media type, no or too long a body, other paths, and everything while closing', async () => {
    const event = JSON.stringify({ orderId: 'h', amount: 1 });
    for (const [name, path, body, headers] of [
      ['?partial', '/v1/orders?partial=true', event, {}],
      ['?partial with rules', '/v1/ruled?partial=true', event, {}],
      ['NDJSON', '/v1/orders', event, { 'content-type': 'application/x-ndjson' }],
      ['text', '/v1/orders', event, { 'content-type': 'text/plain' }],
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

  it("runs the route's WRITE rules as the route does: a pass, a transform before encoding, ERROR (422, nothing written), DLQ, all or nothing", async () => {
    // Each case twice (direct, then route): the records of both are the same, so the first half is the direct path's.
    const pass = await writes(() => same('a pass, masked', '/v1/ruled', { orderId: 'r-1', amount: 5, ssn: '123-45-6789' }, 200));
    expect(pass).toHaveLength(2);
    expect(pass[0]).toEqual({ topic: 'ruled', key: 'r-1', value: { orderId: 'r-1', amount: 5, ssn: '***' }, schemaId: 7 });
    expect(pass[1]).toEqual(pass[0]);

    let refusal: Answer | undefined;
    expect(await writes(async () => (refusal = await same('ERROR', '/v1/ruled', { orderId: 'r-2', amount: -1 }, 422)))).toEqual([]);
    expect(JSON.parse(refusal!.text)).toMatchObject({ error: 'SLUICE_RULE_FAILED', errors: [{ rule: 'positive', subject: 'ruled-value', version: 2, reason: "Expr failed: 'message.amount > 0'" }] });
    const batch = [
      { orderId: 'r-3', amount: 1 },
      { orderId: 'r-4', amount: -2 },
    ];
    expect(await writes(() => same('ERROR in a batch: none written', '/v1/ruled', batch, 422))).toEqual([]);

    let letter: Answer | undefined;
    const dead = await writes(async () => (letter = await same('DLQ', '/v1/ruled', { orderId: 'r-5', amount: 5000, ssn: '999' }, 200)));
    expect(JSON.parse(letter!.text)).toEqual({
      topic: 'orders-review',
      partition: 2,
      offset: '5100',
      deadLettered: { rule: 'small', subject: 'ruled-value', version: 2, reason: "Expr failed: 'message.amount < 1000.0'" },
    });
    // The event as sent, unmasked, to the rule's topic.
    expect(dead[0]).toEqual({ topic: 'orders-review', key: 'r-5', value: { orderId: 'r-5', amount: 5000, ssn: '999' } });
    const mixed = [
      { orderId: 'r-6', amount: 6, ssn: 'x' },
      { orderId: 'r-7', amount: 7000 },
    ];
    const both = await writes(() => same('DLQ in a batch', '/v1/ruled', mixed, 200));
    expect(both.slice(0, 2).map((w) => w.topic)).toEqual(['ruled', 'orders-review']);
    expect(both[0]!.value).toEqual({ orderId: 'r-6', amount: 6, ssn: '***' });

    // A JSONATA rule runs asynchronously: awaited, its transform written.
    const hidden = await writes(() => same('JSONATA', '/v1/jsonata', { orderId: 'j-1', amount: 1, ssn: '1' }, 200));
    expect(hidden[0]).toEqual({ topic: 'jsonata', key: 'j-1', value: { orderId: 'j-1', amount: 1, ssn: 'hidden' }, schemaId: 8 });
    expect(await writes(() => same('JSONATA, a schema refusal first', '/v1/jsonata', { amount: 1 }, 400))).toEqual([]);
  });

  it("serves Idempotency-Key requests with the routes' Idempotency: a first answer, its replay byte for byte, a reused key, a bad key", async () => {
    for (const [path, body] of [
      ['/v1/orders', { orderId: 'k-1', amount: 11 }],
      [
        '/v1/orders',
        [
          { orderId: 'k-2', amount: 12 },
          { orderId: 'k-3', amount: 13 },
        ],
      ],
      ['/v1/ruled', { orderId: 'k-4', amount: 14, ssn: 's' }],
      // A dead letter's answer is an object the route serialises: the general path, keyed.
      ['/v1/ruled', { orderId: 'k-5', amount: 1500 }],
    ] as const) {
      const name = `${path} ${JSON.stringify(body)}`;
      const key = `key-${JSON.stringify(body)}`;
      // Each path its own key, so both answers are a key's first.
      const first = await same(`${name}: first`, path, body, 200, { 'idempotency-key': key }, { 'idempotency-key': `route-${key}` });
      expect(first.headers['idempotent-replayed'], name).toBeUndefined();
      // The retry, by either path: the first answer's text, marked, nothing written.
      const replays = await writes(async () => {
        const replay = await same(`${name}: replay`, path, body, 200, { 'idempotency-key': `"${key}"` });
        expect(replay.text, name).toBe(first.text);
        expect(replay.headers['idempotent-replayed'], name).toBe('true');
      });
      expect(replays, name).toEqual([]);
      // The same key with another body: 422, nothing written.
      const other = Array.isArray(body) ? [{ orderId: 'k-9', amount: 1 }] : { ...body, amount: 1 };
      const reused = await writes(async () => {
        const answer = await same(`${name}: reused`, path, other, 422, { 'idempotency-key': key });
        expect(JSON.parse(answer.text), name).toMatchObject({ error: 'SLUICE_IDEMPOTENCY_KEY_REUSED' });
      });
      expect(reused, name).toEqual([]);
    }
    for (const bad of ['a b', 'x'.repeat(256), '""']) {
      const answer = await same(`bad key ${bad}`, '/v1/orders', { orderId: 'k-6', amount: 1 }, 400, { 'idempotency-key': bad });
      expect(JSON.parse(answer.text)).toMatchObject({ message: expect.stringMatching(/^Idempotency-Key: /) as unknown });
    }
    // A malformed body is refused before the key is looked at, as the route's parser refuses it first.
    const { direct, route } = await both('/v1/orders', '{"orderId": ', { 'idempotency-key': 'a b' });
    expect([direct.status, direct]).toEqual([400, route]);
    expect(JSON.parse(direct.text)).toMatchObject({ error: 'SLUICE_MALFORMED_BODY' });
  });

  it('a key whose request is still in progress: 409 by either path; the first then answers as usual', async () => {
    let reached!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((resolve) => (reached = resolve));
    holding = { reached, release: new Promise<void>((resolve) => (release = resolve)) };
    try {
      const headers = { 'content-type': 'application/json', 'idempotency-key': 'held' };
      const first = fetch(`${url}/v1/orders`, { method: 'POST', headers, body: JSON.stringify({ orderId: 'hold', amount: 1 }) });
      await arrived;
      const answer = await same('in progress', '/v1/orders', { orderId: 'hold', amount: 1 }, 409, { 'idempotency-key': 'held' });
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'SLUICE_IDEMPOTENCY_KEY_IN_USE' });
      release();
      expect((await first).status).toBe(200);
    } finally {
      release();
      holding = undefined;
    }
  });
});
