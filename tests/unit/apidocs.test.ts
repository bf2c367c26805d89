import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { Parser } from '@asyncapi/parser';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import { validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createTypes, validateAvro } from '../../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT } from '../../core/config.ts';
import { avroToJsonSchema } from '../../contracts/json-schema.ts';
import { loadTopology } from '../../topology/load.ts';
import { registerDocs } from '../../producers/docs.ts';
import { randomOrder } from '../support/orders.ts';

const topology = loadTopology(join(PROJECT_ROOT, 'topology/sluice.topology.yaml'));
const config = loadConfig({}, { kafkaBrokers: '127.0.0.1:9092' });

async function docsApp() {
  const app = Fastify();
  registerDocs(app, topology, config);
  await app.ready();
  return app;
}

describe('API documents served under /docs', () => {
  it('/docs/openapi.json is a valid OpenAPI 3.1 document of the ingress routes', async () => {
    const app = await docsApp();
    const response = await app.inject({ method: 'GET', url: '/docs/openapi.json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json<Record<string, unknown>>();
    const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
    expect(result.valid ? [] : result.errors).toEqual([]);
    const post = (doc.paths as Record<string, { post: { responses: Record<string, unknown> } }>)['/v1/orders']?.post;
    expect(Object.keys(post?.responses ?? {}).sort()).toEqual(['200', '207', '400', '409', '413', '415', '422', '503']);
    const read = (doc.paths as Record<string, { get?: { parameters: { name: string }[] } }>)['/v1/topics/{topic}/records']?.get;
    expect(read?.parameters.map((p) => p.name)).toEqual(['topic', 'from', 'partition', 'max', 'where', 'last-event-id']);
  });

  it('/docs/asyncapi.json is a valid AsyncAPI 3 document: channels are topics, messages the Avro schemas', async () => {
    const app = await docsApp();
    const response = await app.inject({ method: 'GET', url: '/docs/asyncapi.json' });
    expect(response.statusCode).toBe(200);
    const parser = new Parser();
    parser.registerSchemaParser(AvroSchemaParser());
    const { document, diagnostics } = await parser.parse(response.body);
    const errors = diagnostics.filter((d) => d.severity === 0);
    expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
    expect(document?.version()).toBe('3.0.0');
    expect(
      document
        ?.channels()
        .all()
        .map((c) => c.address())
        .sort(),
    ).toEqual(['orders.placed', 'orders.placed.dlq', 'orders.scored']);
    const placed = document
      ?.channels()
      .all()
      .find((c) => c.address() === 'orders.placed');
    expect(placed?.messages().all()[0]?.name()).toBe('orders.placed-value');
    // The parser's first run loads its rule set, which takes seconds on a busy machine.
  }, 30_000);

  it('/docs is a readable page without external resources', async () => {
    const app = await docsApp();
    const response = await app.inject({ method: 'GET', url: '/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toContain('POST /v1/orders');
    expect(response.body).toContain('href="/docs/openapi.json"');
    expect(response.body).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});

describe('JSON Schema derived from Avro', () => {
  const orderPlaced = topology.topics[0]!.valueSchema!.schema;
  const check = new Ajv2020({ strict: false, logger: false }).compile(avroToJsonSchema(orderPlaced));

  it('accepts what the Avro contract accepts and refuses what it refuses', () => {
    const types = createTypes(JSON.stringify(orderPlaced));
    for (let i = 0; i < 20; i++) {
      const order = randomOrder();
      expect(validateAvro(types, order)).toEqual([]);
      expect(check(order), JSON.stringify(check.errors)).toBe(true);
    }
    expect(check({ ...randomOrder(), amount: 'a lot' })).toBe(false);
    expect(check({ ...randomOrder(), currency: 'XXX' })).toBe(false);
    const { orderId: _omitted, ...withoutId } = randomOrder();
    expect(check(withoutId)).toBe(false);
  });
});

describe('API documents of a topology with Avro, JSON Schema and Protobuf topics', () => {
  const formats = loadTopology(join(PROJECT_ROOT, 'topology/formats.topology.yaml'));

  async function formatsApp() {
    const app = Fastify();
    registerDocs(app, formats, config);
    await app.ready();
    return app;
  }

  it('OpenAPI is valid and each route body is the JSON Schema of its contract', async () => {
    const doc = (await (await formatsApp()).inject({ method: 'GET', url: '/docs/openapi.json' })).json<{ components: { schemas: Record<string, object> } }>();
    const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
    expect(result.valid ? [] : result.errors).toEqual([]);
    const ajv = new Ajv2020({ strict: false, logger: false });
    for (const subject of ['payments.avro-value', 'payments.json-value', 'payments.proto-value']) {
      const check = ajv.compile(doc.components.schemas[subject]!);
      expect(check({ paymentId: 'p-1', amountCents: 100, currency: 'EUR' }), `${subject}: ${JSON.stringify(check.errors)}`).toBe(true);
      expect(check({ paymentId: 'p-1', amountCents: 100, currency: 'JPY' }), subject).toBe(false);
    }
  });

  it('AsyncAPI is valid: Avro and JSON Schema payloads in their own formats, Protobuf as JSON Schema', async () => {
    const body = (await (await formatsApp()).inject({ method: 'GET', url: '/docs/asyncapi.json' })).body;
    const parser = new Parser();
    parser.registerSchemaParser(AvroSchemaParser());
    const { diagnostics } = await parser.parse(body);
    const errors = diagnostics.filter((d) => d.severity === 0);
    expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
    const messages = (JSON.parse(body) as { components: { messages: Record<string, { payload: { schemaFormat?: string } }> } }).components.messages;
    expect(messages[`payments_avro_value`]?.payload.schemaFormat).toMatch(/avro/);
    expect(messages[`payments_json_value`]?.payload.schemaFormat).toMatch(/schema\+json/);
    expect(messages[`payments_proto_value`]?.payload).toMatchObject({ type: 'object', title: 'Payment' });
  }, 30_000);
});
