import type { AvroCodec } from '../../core/formats/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { createResolvingDecoder } from '../../core/formats/avro-types.ts';
import { loadConfig } from '../../core/config.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import { createLogger } from '../../core/logger.ts';
import { unframe } from '../../core/wire-format.ts';
import { FilterError } from '../../core/errors.ts';
import { compileFilter, type FilterContext } from '../../reads/filter.ts';
import { loadTopology } from '../../topology/load.ts';
import { ORDER_DEFAULTS } from '../support/order-topology.ts';
import { startConsole, type RunningConsole } from '../../console/server.ts';
import { writeAccessFile } from '../support/access.ts';
import { ingressApp } from '../support/ingress-app.ts';
import { memoryRegistryApp } from '../support/memory-registry.ts';

/**
 * Properties over arbitrary input: the ingress and the registry answer 2xx or
 * 4xx, never 5xx, and what the ingress accepts reads back unchanged; --where
 * expressions stay bounded and cannot run code. `npm run fuzz` raises the runs.
 */
const RUNS = Number(process.env.SLUICE_FUZZ_RUNS ?? 2000);
const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
const logger = createLogger(config, 'fuzz');
const topology = loadTopology(new URL('../../topology/sluice.topology.yaml', import.meta.url).pathname);

// Any code point, and the UTF-16 halves JSON's \u escapes can smuggle in on their own.
const text = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }), weight: 9 },
  { arbitrary: fc.string({ unit: fc.constantFrom('a', '\ud800', '\udc00', '😀', '\u0000', '"', '\\'), maxLength: 6 }), weight: 1 },
);
const double = fc.oneof(fc.double(), fc.integer());
const item = fc.record({ sku: text, quantity: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), unitPrice: double });
const placedAt = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 45 }),
  fc.date({ min: new Date(0), max: new Date(9e12), noInvalidDate: true }).map((d) => d.toISOString()),
);
const order = fc.record(
  {
    orderId: text,
    customerId: text,
    items: fc.array(item, { maxLength: 3 }),
    amount: double,
    currency: fc.constantFrom('EUR', 'USD', 'GBP', 'CHF', 'JPY', 'OTHER'),
    placedAt,
    channel: fc.constantFrom('WEB', 'MOBILE', 'STORE', 'API'),
    couponCode: fc.option(text),
    shippingCountry: fc.option(text),
    loyaltyPoints: fc.oneof(fc.integer(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
  },
  { requiredKeys: ['orderId', 'customerId', 'items', 'amount', 'currency', 'placedAt'] },
);
/** Orders with one field replaced by anything at all, or an extra field (__proto__ and constructor among them). */
const nearOrder = fc.oneof(
  { arbitrary: order, weight: 3 },
  {
    arbitrary: fc.tuple(order, fc.constantFrom('orderId', 'items', 'amount', 'currency', 'placedAt', 'loyaltyPoints', 'couponCode'), fc.jsonValue()).map(([o, k, v]) => ({ ...o, [k]: v })),
    weight: 1,
  },
  {
    arbitrary: fc.tuple(order, fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'), fc.string()), fc.jsonValue()).map(([o, k, v]) => {
      const copy: Record<string, unknown> = { ...o };
      Object.defineProperty(copy, k, { value: v, enumerable: true, configurable: true, writable: true });
      return copy;
    }),
    weight: 1,
  },
);

/** What a posted order reads back as: defaults filled in, the timestamp as epoch milliseconds. */
function expected(posted: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ORDER_DEFAULTS, ...posted };
  if (typeof out.placedAt === 'string') out.placedAt = Date.parse(out.placedAt);
  return out;
}

describe('ingress under arbitrary input', () => {
  let app: FastifyInstance;
  let sent: Awaited<ReturnType<typeof ingressApp>>['sent'];
  let decoders: Map<number, ReturnType<typeof createResolvingDecoder>>;
  beforeAll(async () => {
    const built = await ingressApp(config, topology, logger);
    ({ app, sent } = built);
    decoders = new Map(built.bindings.map((b) => [b.schemaId, createResolvingDecoder((b.codec as AvroCodec).types)]));
  });
  afterAll(async () => app.close());
  const routes = topology.routes.map((r) => r.path);

  it('answers 2xx or 4xx to any JSON value, and an accepted event reads back equal', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(nearOrder, fc.jsonValue(), fc.array(nearOrder, { minLength: 1, maxLength: 3 })), async (url, value) => {
        sent.length = 0;
        const body = stringifyJson(value);
        const response = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body });
        expect(response.statusCode, response.body).toBeLessThan(500);
        if (response.statusCode >= 300) return;
        accepted += 1;
        // What was posted, as the ingress read it (exact longs), against what a consumer decodes.
        const posted = parseJson(body);
        const events = (Array.isArray(posted) ? posted : [posted]) as Record<string, unknown>[];
        expect(sent).toHaveLength(events.length);
        sent.forEach((record, i) => {
          const { schemaId, payload } = unframe(record.value);
          expect(decoders.get(schemaId)!.decode(payload)).toEqual(expected(events[i]!));
        });
      }),
      { numRuns: RUNS },
    );
    // The round trip is only a property if a good share of the inputs get through.
    expect(accepted).toBeGreaterThan(RUNS / 20);
  }, 300_000);

  it('answers 2xx or 4xx to any bytes, as JSON or NDJSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.constantFrom('application/json', 'application/x-ndjson', 'text/plain'),
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.tuple(nearOrder, fc.uint8Array({ minLength: 1, maxLength: 4 }), fc.nat()).map(([o, junk, at]) => {
            const bytes = Buffer.from(stringifyJson(o));
            const cut = at % (bytes.length + 1);
            return Buffer.concat([bytes.subarray(0, cut), Buffer.from(junk), bytes.subarray(cut)]);
          }),
        ),
        async (url, type, payload) => {
          const response = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
          expect(response.statusCode, response.body).toBeLessThan(500);
        },
      ),
      { numRuns: RUNS },
    );
  }, 300_000);
});

describe('registry under arbitrary request bodies', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = memoryRegistryApp(config, logger).app;
    await app.ready();
  });
  afterAll(async () => app.close());

  const subject = fc.oneof(fc.constantFrom('orders-value', '__proto__', 'constructor', 'toString'), fc.string({ minLength: 1, maxLength: 10 }));
  const schema = fc.oneof(
    fc.constantFrom('"int"', '"string"', '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}', '{"type":"enum","name":"E","symbols":["constructor"]}'),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string(),
  );
  const body = fc.oneof(
    fc.record({ schema }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.record({ schema, schemaType: fc.oneof(fc.constantFrom('AVRO', 'JSON', 'PROTOBUF'), fc.jsonValue()), references: fc.jsonValue() }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.record({ compatibility: fc.oneof(fc.constantFrom('BACKWARD', 'FULL', 'NONE'), fc.jsonValue()) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.record({ mode: fc.oneof(fc.constantFrom('READWRITE', 'READONLY'), fc.jsonValue()) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  );
  const route = fc.constantFrom(
    ['POST', '/subjects/:s/versions'],
    ['POST', '/subjects/:s'],
    ['POST', '/compatibility/subjects/:s/versions'],
    ['POST', '/compatibility/subjects/:s/versions/latest'],
    ['PUT', '/config'],
    ['PUT', '/config/:s'],
    ['PUT', '/mode'],
    ['DELETE', '/subjects/:s'],
    ['GET', '/subjects/:s/versions/latest'],
  );

  it('refuses a body that is not UTF-8 rather than store replaced characters', async () => {
    const body = Buffer.concat([Buffer.from('{"schema":"{\\"type\\":\\"enum\\",\\"name\\":\\"E\\",\\"symbols\\":[\\"A\\"],\\"doc\\":\\"'), Buffer.from([0xff]), Buffer.from('\\"}"}')]);
    const response = await app.inject({ method: 'POST', url: '/subjects/utf8/versions', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, payload: body });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error_code: 400, message: expect.stringMatching(/not valid UTF-8/) });
  });

  it('answers 2xx or 4xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(route, subject, body, async ([method, path], s, payload) => {
        const response = await app.inject({
          method: method as 'POST',
          url: path.replace(':s', encodeURIComponent(s)),
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          ...(method === 'GET' || method === 'DELETE' ? {} : { payload }),
        });
        expect(response.statusCode, `${method} ${path} ${s}: ${response.body}`).toBeLessThan(500);
        if (response.statusCode >= 400) expect(response.json()).toMatchObject({ error_code: expect.any(Number), message: expect.any(String) });
      }),
      { numRuns: RUNS },
    );
  }, 300_000);
});

describe('registry under pathological sizes', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = memoryRegistryApp(config, logger).app;
    await app.ready();
  });
  afterAll(async () => app.close());

  // Repeated units of the shapes that were quadratic (or recursed) before issue 22, at sizes up to the 1 MiB body limit.
  const unit = fc.constantFrom('\n', ' ', '/*', '/* x', '//', '"', "'", '{', '}', '[', ']', 'syntax = ', 'message A {', '{"a":', '[', '\\', 'a.', '*/');
  const size = fc.constantFrom(1_000, 30_000, 400_000);
  const wrap = fc.constantFrom(
    (t: string) => ({ schema: t, schemaType: 'PROTOBUF' }),
    (t: string) => ({ schema: t, schemaType: 'JSON' }),
    (t: string) => ({ schema: t }),
    (t: string) => ({ schema: JSON.stringify({ type: 'record', name: t, fields: [] }) }),
    (t: string) => ({ schemaType: 'JSON', schema: JSON.stringify({ properties: { a: { $ref: t } } }) }),
    (t: string) => ({ schemaType: 'JSON', schema: '{"$id":"a"}', references: [{ name: t, subject: 's', version: 1 }] }),
    (t: string) => ({ schema: '"int"', references: [{ name: t, subject: t, version: 1 }] }),
    (t: string) => ({ schema: '"int"', references: Array.from({ length: Math.min(t.length, 10_000) }, (_, i) => ({ name: `n${i}`, subject: t.slice(0, 100), version: 1 })) }),
    (t: string) => ({ compatibility: t }),
    (t: string) => ({ mode: t }),
  );
  const route = fc.constantFrom(['POST', '/subjects/s/versions'], ['POST', '/compatibility/subjects/s/versions'], ['POST', '/subjects/s'], ['PUT', '/config/s'], ['PUT', '/mode/s']);

  it('answers 2xx or 4xx, never 5xx, to schema texts, references and config bodies up to the body limit', async () => {
    await app.inject({ method: 'POST', url: '/subjects/s/versions', headers: { 'content-type': 'application/json' }, payload: { schema: '"int"' } });
    await fc.assert(
      fc.asyncProperty(route, unit, size, wrap, async ([method, url], piece, n, make) => {
        const response = await app.inject({
          method: method as 'POST',
          url: url!,
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(make(piece.repeat(Math.ceil(n / piece.length)))),
        });
        expect(response.statusCode, `${method} ${url} ${JSON.stringify(piece)} x${n}: ${response.body.slice(0, 200)}`).toBeLessThan(500);
      }),
      { numRuns: Math.min(RUNS, 40) },
    );
  }, 300_000);
});

describe('console sign-in under arbitrary bodies', () => {
  // The real console (its parsers, access control and routes) on a free loopback port; sign-ins touch no broker.
  let running: RunningConsole;
  beforeAll(async () => {
    const access = await writeAccessFile([{ name: 'alice', allow: ['console:viewer'], password: 'alice-password-1' }]);
    const consoleConfig = loadConfig({ SLUICE_LOG_LEVEL: 'silent', SLUICE_ACCESS_FILE: access.file, KAFKA_BROKERS: '127.0.0.1:9' });
    running = await startConsole({ config: consoleConfig, logger, port: 0, topology: { workers: [], bridges: [], routes: [] } });
  });
  afterAll(async () => running?.close());

  const login = async (payload: string | Buffer, type = 'application/json') => {
    const response = await fetch(`${running.url}/api/login`, { method: 'POST', headers: { 'content-type': type }, body: payload });
    return { status: response.status, body: await response.text() };
  };
  const MiB = 1024 * 1024;
  // Up to the body limit (1 MiB): long names and passwords, wide and deep values, junk bytes, other types.
  const big = fc.constantFrom(10, 1000, 100_000, MiB - 64);
  const field = fc.oneof(
    fc.jsonValue(),
    fc.tuple(fc.constantFrom('a', '"', '\\', '\u0000', '😀', '[', '{'), big).map(([unit, n]) => unit.repeat(Math.floor(n / 2 / unit.length))),
  );
  const body = fc.oneof(
    fc.record({ name: fc.oneof(fc.constant('alice'), field), password: field }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.tuple(fc.constantFrom('[', '{"name":'), big).map(([open, n]) => open.repeat(Math.floor(n / open.length))),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  );

  it('answers 2xx or 4xx, never 5xx, to any login body up to the body limit, and keeps answering', async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'), async (payload, type) => {
        const { status, body: answer } = await login(payload, type);
        expect(status, answer.slice(0, 200)).toBeGreaterThanOrEqual(200);
        expect(status, answer.slice(0, 200)).toBeLessThan(500);
      }),
      { numRuns: Math.max(20, Math.round(RUNS / 30)) },
    );
    // 1 MiB nested 500k deep is refused before parsing, naming the bound; the console still answers afterwards.
    const deep = await login(`${'['.repeat(MiB / 2)}${']'.repeat(MiB / 2)}`);
    expect(deep.status).toBe(400);
    expect(deep.body).toMatch(/nested more than 128 arrays\/objects deep \(byte offset 128\)/);
    expect((await fetch(`${running.url}/api/session`)).status).toBe(200);
  }, 300_000);
});

describe('--where expressions', () => {
  const record: FilterContext = {
    value: { amount: 120.5, currency: 'EUR', items: [{ sku: 'a' }], big: 9007199254740993n, text: 'x'.repeat(1000) },
    key: 'o-1',
    headers: { 'correlation-id': 'c' },
    topic: 'orders.placed',
    partition: 0,
    offset: 1,
    timestamp: 1,
  };
  const leaf = fc.constantFrom(
    'value',
    'value.amount',
    'value.text',
    'value.big',
    'key',
    'headers',
    'topic',
    'offset',
    '1',
    '"s"',
    '99999999999999999999',
    'null',
    'true',
    'constructor',
    'value.constructor',
    'value["__proto__"]',
    'value.text.length',
  );
  const expression: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(tie('e'), fc.constantFrom('+', '-', '*', '/', '%', '==', '!=', '<', '>=', '&&', '||'), tie('e')).map(([a, op, b]) => `(${a} ${op} ${b})`),
      fc.tuple(tie('e'), fc.constantFrom('toUpperCase()', 'trim()', 'includes("a")', 'startsWith(value.text)', 'constructor("return 1")', 'call(null)')).map(([a, m]) => `${a}.${m}`),
      tie('e').map((a) => `!${a}`),
      fc.tuple(tie('e'), tie('e')).map(([a, b]) => `[${a}, ${b}]`),
    ),
  })).e;

  it('either refuse to compile or evaluate to a boolean, quickly, without running code', () => {
    fc.assert(
      fc.property(fc.oneof(expression, fc.string({ maxLength: 200 })), (source) => {
        let filter;
        try {
          filter = compileFilter(source);
        } catch (error) {
          expect(error).toBeInstanceOf(FilterError);
          return;
        }
        // The bound is structural (terms, depth, string cap: tested below), so no clock here; the test's timeout catches a blow-up.
        expect(typeof filter(record)).toBe('boolean');
        expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('refuses expressions beyond the size bound before parsing them', () => {
    expect(() => compileFilter(`${'('.repeat(5000)}1${')'.repeat(5000)}`)).toThrow(FilterError);
    expect(() => compileFilter(Array.from({ length: 2000 }, () => 'value.amount').join(' + '))).toThrow(/longer than/);
  });

  it('bounds the terms and caps the strings an expression can build', () => {
    expect(() => compileFilter(`[${Array.from({ length: 250 }, () => '1').join(',')}]`)).toThrow(/more than 200 terms/);
    expect(() => compileFilter(Array.from({ length: 80 }, () => '1').join('+'))).toThrow(/nested more than 64 deep/);
    const sixteen = compileFilter(
      '((((value.text + value.text) + (value.text + value.text)) + ((value.text + value.text) + (value.text + value.text))) + (((value.text + value.text) + (value.text + value.text)) + ((value.text + value.text) + (value.text + value.text)))).length > 0',
    );
    expect(sixteen(record)).toBe(true);
    expect(sixteen({ ...record, value: { text: 'x'.repeat(10_000) } })).toBe(false);
  });
});
