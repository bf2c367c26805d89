import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolvingDecoder, createTypes, type AvroTypes } from '../../core/formats/avro-types.ts';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { unframe } from '../../core/wire-format.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';
import type { PartitionReader } from '../../kafka/index.ts';
import { createTestTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

const SCHEMA_FILE = `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`;
const schemaText = readFileSync(SCHEMA_FILE, 'utf8');
const types: AvroTypes = createTypes(schemaText);
const decoder = createResolvingDecoder(types);
const PARTITIONS = 3;

function topologyFor(topic: string): Topology {
  const schema = JSON.parse(schemaText) as NonNullable<Topology['topics'][number]['valueSchema']>['schema'];
  return {
    file: `${PROJECT_ROOT}/tests/integration/ingress.topology.yaml`,
    topics: [
      {
        name: topic,
        partitions: PARTITIONS,
        replicationFactor: 1,
        configs: {},
        valueSchema: { file: SCHEMA_FILE, subject: subjectFor(topic), schema, text: JSON.stringify(schema) },
      },
    ],
    routes: [{ method: 'POST', path: '/v1/orders', topic, key: 'orderId' }],
    workers: [],
  };
}

let seq = 0;
function order(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return {
    orderId: `o-${seq}-${Math.random().toString(36).slice(2, 8)}`,
    customerId: 'c-1',
    items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }],
    amount: 19,
    currency: 'EUR',
    placedAt: 1767225600000,
    ...over,
  };
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

async function post(url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Reply> {
  const response = await fetch(url, { method: 'POST', body, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? (parseJson(text) as Record<string, unknown>) : {} };
}

async function get(url: string): Promise<Reply> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) as Record<string, unknown> };
}

async function endOffsets(topic: string): Promise<number> {
  return withKafkaAdmin(async (admin) => (await admin.watermarks(topic)).reduce((sum, p) => sum + Number(p.high), 0));
}

interface Seen {
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** Everything on the topic by "partition:offset", filled by one reader for the whole file. */
const seen = new Map<string, Seen>();
async function recordAt(partition: number, offset: string, timeoutMs = 10_000): Promise<Seen> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = seen.get(`${partition}:${offset}`);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no record at ${partition}:${offset} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

let config: SluiceConfig;
let log: Logger;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let reader: PartitionReader;
let reading: Promise<void>;
let topic: string;
let ordersUrl: string;

beforeAll(async () => {
  config = testConfig({ produceTimeoutMs: '5000', bodyLimit: '32768', lingerMs: '10' });
  log = testLogger(config, 'ingress-test');
  topic = uniqueName('ingress-orders');
  await createTestTopics([{ name: topic, partitions: PARTITIONS }]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: topologyFor(topic), registry: new RegistryClient(registry.url), port: 0 });
  ordersUrl = `${ingress.url}/v1/orders`;
  reader = seam('ingress-test-reader').partitionReader({ maxWaitMs: 100 });
  reader.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, offset: 0n })));
  reading = reader.run((batch) => {
    for (const r of batch.records) {
      const headers = Object.fromEntries(r.headers.map(([k, v]) => [k, v?.toString() ?? '']));
      seen.set(`${r.partition}:${r.offset}`, { key: r.key?.toString('utf8') ?? null, value: r.value!, headers });
    }
  });
});

afterAll(async () => {
  await reader?.close();
  await reading;
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic])).catch(() => undefined);
});

describe('ingress against a real broker and registry', () => {
  it('produces one event and answers with the exact partition and offset of its record', async () => {
    const event = order({ couponCode: 'WELCOME', channel: 'MOBILE' });
    const reply = await post(ordersUrl, JSON.stringify(event), { 'content-type': 'application/json', 'x-correlation-id': 'corr-single-1' });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('x-correlation-id')).toBe('corr-single-1');
    expect(reply.body).toEqual({ topic, partition: expect.any(Number), offset: expect.stringMatching(/^\d+$/), schemaId: expect.any(Number) });
    const schemaId = await new RegistryClient(registry.url).register(subjectFor(topic), JSON.stringify(JSON.parse(schemaText)));
    expect(reply.body.schemaId).toBe(schemaId);

    const record = await recordAt(reply.body.partition as number, reply.body.offset as string);
    expect(record.key).toBe(event.orderId);
    expect(record.headers['correlation-id']).toBe('corr-single-1');
    const framed = unframe(record.value);
    expect(record.value[0]).toBe(0);
    expect(framed.schemaId).toBe(schemaId);
    expect(decoder.decode(framed.payload)).toEqual({ ...event, shippingCountry: null, loyaltyPoints: 0 });
  });

  it('generates a correlation id when none is sent', async () => {
    const reply = await post(ordersUrl, JSON.stringify(order()));
    expect(reply.status).toBe(200);
    const id = reply.headers.get('x-correlation-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const record = await recordAt(reply.body.partition as number, reply.body.offset as string);
    expect(record.headers['correlation-id']).toBe(id);
  });

  for (const format of ['array', 'ndjson'] as const) {
    it(`produces a batch of 50 as ${format}, each result pointing at its own record`, async () => {
      const events = Array.from({ length: 50 }, () => order());
      const reply =
        format === 'array' ? await post(ordersUrl, JSON.stringify(events)) : await post(ordersUrl, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`, { 'content-type': 'application/x-ndjson' });
      expect(reply.status).toBe(200);
      const results = reply.body.results as { topic: string; partition: number; offset: string; schemaId: number }[];
      expect(results).toHaveLength(50);
      expect(new Set(results.map((r) => `${r.partition}:${r.offset}`)).size).toBe(50);
      expect(new Set(results.map((r) => r.partition)).size).toBeGreaterThan(1);
      for (const [i, result] of results.entries()) {
        const record = await recordAt(result.partition, result.offset);
        expect(record.key).toBe(events[i]!.orderId);
        expect((decoder.decode(unframe(record.value).payload) as Record<string, unknown>).orderId).toBe(events[i]!.orderId);
      }
    });
  }

  it('round-trips a long beyond 2^53 exactly', async () => {
    const event = order();
    const body = JSON.stringify(event).replace(/}$/, ',"loyaltyPoints":9223372036854775807}');
    const reply = await post(ordersUrl, body);
    expect(reply.status).toBe(200);
    const record = await recordAt(reply.body.partition as number, reply.body.offset as string);
    const decoded = decoder.decode(unframe(record.value).payload) as Record<string, unknown>;
    expect(decoded.loyaltyPoints).toBe(9223372036854775807n);
    expect(stringifyJson(decoded.loyaltyPoints)).toBe('9223372036854775807');
  });

  describe('refuses bad input and writes nothing', () => {
    const bad = (over: Record<string, unknown>, drop?: string) => {
      const event = order(over);
      if (drop) delete event[drop];
      return JSON.stringify(event);
    };
    const cases: { name: string; send: () => Promise<Reply>; status: number; body: Record<string, unknown> }[] = [
      {
        name: 'malformed JSON',
        send: () => post(ordersUrl, '{"orderId": "o-1",, }'),
        status: 400,
        body: { error: 'SLUICE_MALFORMED_BODY', message: expect.stringMatching(/not valid JSON.*position 18/) },
      },
      {
        name: 'malformed NDJSON line',
        send: () => post(ordersUrl, `${JSON.stringify(order())}\n{"orderId":\n`, { 'content-type': 'application/x-ndjson' }),
        status: 400,
        body: { error: 'SLUICE_MALFORMED_BODY', message: expect.stringMatching(/^line 2 is not valid JSON/) },
      },
      {
        name: 'a wrong type deep inside',
        send: () => post(ordersUrl, bad({ items: [{ sku: 'S', quantity: 'x', unitPrice: 1 }] })),
        status: 400,
        body: {
          error: 'SLUICE_VALIDATION_FAILED',
          path: 'items[0].quantity',
          message: expect.stringMatching(/items\[0\]\.quantity/),
          errors: [{ path: 'items[0].quantity', message: expect.stringMatching(/expected int/) }],
        },
      },
      {
        name: 'a missing field',
        send: () => post(ordersUrl, bad({}, 'customerId')),
        status: 400,
        body: { error: 'SLUICE_VALIDATION_FAILED', path: 'customerId', errors: [{ path: 'customerId', message: expect.stringMatching(/missing/) }] },
      },
      {
        name: 'an empty object',
        send: () => post(ordersUrl, '{}'),
        status: 400,
        body: { error: 'SLUICE_VALIDATION_FAILED', path: 'orderId', errors: expect.arrayContaining([{ path: 'placedAt', message: expect.any(String) }]) },
      },
      {
        name: 'an unknown field',
        send: () => post(ordersUrl, bad({ colour: 'red' })),
        status: 400,
        body: { error: 'SLUICE_VALIDATION_FAILED', path: 'colour', errors: [{ path: 'colour', message: expect.stringMatching(/unknown field/) }] },
      },
      {
        name: 'a batch with two bad events',
        send: () => post(ordersUrl, JSON.stringify([order(), order({ amount: 'lots' }), order(), order({ currency: 'DOGE' }), order()])),
        status: 400,
        body: {
          error: 'SLUICE_VALIDATION_FAILED',
          message: expect.stringMatching(/^2 of 5 events are invalid/),
          errors: [
            { index: 1, path: 'amount', message: expect.any(String) },
            { index: 3, path: 'currency', message: expect.any(String) },
          ],
        },
      },
      {
        name: 'an oversized body',
        send: () => post(ordersUrl, bad({ couponCode: 'x'.repeat(40_000) })),
        status: 413,
        body: { error: 'SLUICE_BODY_TOO_LARGE', message: expect.stringMatching(/32768 bytes/) },
      },
      {
        name: 'a wrong content type',
        send: () => post(ordersUrl, bad({}), { 'content-type': 'text/plain' }),
        status: 415,
        body: { error: 'SLUICE_UNSUPPORTED_MEDIA_TYPE', message: expect.any(String) },
      },
      {
        name: 'an unknown route',
        send: () => post(`${ingress.url}/v1/nope`, bad({})),
        status: 404,
        body: { error: 'SLUICE_NOT_FOUND', message: expect.stringMatching(/POST \/v1\/nope/) },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const before = await endOffsets(topic);
        const reply = await c.send();
        expect(reply.status).toBe(c.status);
        expect(reply.body).toMatchObject(c.body);
        expect(reply.headers.get('x-correlation-id')).toBeTruthy();
        expect(await endOffsets(topic)).toBe(before);
      });
    }
  });

  it('coalesces 200 concurrent requests into far fewer produce requests', async () => {
    // Open the client's connections first, so the burst measures batching, not TCP set-up.
    await Promise.all(Array.from({ length: 200 }, () => get(`${ingress.url}/healthz`)));
    const batchesBefore = ingress.stats().batchesSent;
    const replies = await Promise.all(Array.from({ length: 200 }, () => post(ordersUrl, JSON.stringify(order()))));
    expect(replies.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(new Set(replies.map((r) => `${r.body.partition as number}:${r.body.offset as string}`)).size).toBe(200);
    const batches = ingress.stats().batchesSent - batchesBefore;
    expect(batches).toBeLessThan(200 / 4);
    const metrics = await (await fetch(`${ingress.url}/metrics`)).text();
    expect(Number(/^sluice_ingress_produce_batches_total (\d+)$/m.exec(metrics)?.[1])).toBe(ingress.stats().batchesSent);
  });

  it('answers /healthz and /readyz', async () => {
    expect(await get(`${ingress.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await get(`${ingress.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', checks: { broker: { ok: true }, registry: { ok: true }, schemas: { ok: true } } });
  });
});

describe('ingress with the broker unreachable', () => {
  let down: Ingress;
  const timeoutMs = 1500;

  beforeAll(async () => {
    const deadConfig = testConfig({ kafkaBrokers: `127.0.0.1:${await freePort()}`, produceTimeoutMs: String(timeoutMs) });
    down = await startIngress({ config: deadConfig, logger: log, topology: topologyFor(topic), registry: new RegistryClient(registry.url), port: 0 });
  });
  afterAll(async () => {
    await down?.close();
  });

  it('answers 503 with Retry-After within the produce timeout, never hangs', async () => {
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 5 }, () => post(`${down.url}/v1/orders`, JSON.stringify(order()))));
    const elapsed = Date.now() - started;
    for (const reply of replies) {
      expect(reply.status).toBe(503);
      expect(reply.body).toMatchObject({ error: 'SLUICE_BROKER_UNAVAILABLE', message: expect.any(String) });
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(elapsed).toBeLessThan(timeoutMs + 1000);
  });

  it('is alive but not ready, and says the broker is why', async () => {
    expect((await get(`${down.url}/healthz`)).status).toBe(200);
    const ready = await get(`${down.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: 'SLUICE_NOT_READY', checks: { broker: { ok: false }, registry: { ok: true } } });
    expect(ready.body.message).toMatch(/broker/);
  });
});

describe('ingress with a broker that accepts connections but never answers', () => {
  let hung: Ingress;
  let silent: Server;
  const sockets = new Set<Socket>();
  const timeoutMs = 1500;

  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const hungConfig = testConfig({ kafkaBrokers: `127.0.0.1:${port}`, produceTimeoutMs: String(timeoutMs) });
    const started = Date.now();
    hung = await startIngress({ config: hungConfig, logger: log, topology: topologyFor(topic), registry: new RegistryClient(registry.url), port: 0 });
    // Start-up waits for the broker at most the produce timeout, then serves anyway.
    expect(Date.now() - started).toBeLessThan(timeoutMs + 1000);
  });
  afterAll(async () => {
    const started = Date.now();
    await hung?.close();
    log.info({ ms: Date.now() - started }, 'hung ingress closed');
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('answers 503 within the deadline, and the send itself ends too', async () => {
    const started = Date.now();
    const reply = await post(`${hung.url}/v1/orders`, JSON.stringify(order()));
    const elapsed = Date.now() - started;
    expect(reply.status).toBe(503);
    expect(reply.body).toMatchObject({ error: 'SLUICE_BROKER_UNAVAILABLE' });
    expect(reply.headers.get('retry-after')).toBe('2');
    expect(elapsed).toBeLessThan(timeoutMs + 1000);
    const deadline = Date.now() + 4 * timeoutMs;
    while (hung.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    log.info({ ms: Date.now() - started }, 'hung send ended');
    expect(hung.stats()).toMatchObject({ inFlight: 0, batchesFailed: 1 });
  });
});

describe('ingress start and close', () => {
  it('refuses to start when the registry rejects a route schema as incompatible (409), with its reason', async () => {
    const other = uniqueName('ingress-incompatible');
    const older = JSON.parse(schemaText) as { fields: { name: string }[] };
    older.fields = older.fields.filter((f) => f.name !== 'customerId');
    await new RegistryClient(registry.url).register(subjectFor(other), JSON.stringify(older));
    // The new schema requires customerId with no default, so it cannot read what was written before.
    await expect(startIngress({ config, logger: log, topology: topologyFor(other), registry: new RegistryClient(registry.url), port: 0 })).rejects.toMatchObject({
      statusCode: 409,
      message: expect.stringMatching(/customerId/),
    });
  });

  it('on close, answers the requests in flight (their records are written) before it stops', async () => {
    const closing = await startIngress({ config: testConfig({ lingerMs: '1000' }), logger: log, topology: topologyFor(topic), registry: new RegistryClient(registry.url), port: 0 });
    const pending = Array.from({ length: 20 }, () => post(`${closing.url}/v1/orders`, JSON.stringify(order())));
    // The 1 s linger keeps the records queued while close starts (waiting for all 20 to arrive, on a busy machine too).
    const arrived = Date.now() + 900;
    while (closing.stats().queued < 20 && Date.now() < arrived) await new Promise((r) => setTimeout(r, 10));
    expect(closing.stats()).toMatchObject({ queued: 20, batchesSent: 0 });
    await closing.close();
    const replies = await Promise.all(pending);
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(closing.stats()).toMatchObject({ recordsSent: 20, queued: 0, inFlight: 0 });
    await expect(fetch(`${closing.url}/healthz`)).rejects.toThrow();
  });
});
