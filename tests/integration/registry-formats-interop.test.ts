import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../core/registry-client.ts';
import { createCodecEncoder, decodeFramed } from '../../core/serde.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { call, deleteRegistryTopic, registryTestConfig } from './registry-helpers.ts';

/**
 * Avro, JSON Schema and Protobuf with references across subjects, written and
 * read by @kafkajs/confluent-schema-registry (a Confluent client that knows
 * nothing of Sluice) and by Sluice's own codecs, against Sluice's registry.
 */

const { config, logger, topic } = registryTestConfig();
let registry: RunningRegistry;

interface Format {
  type: SchemaType;
  name: 'AVRO' | 'JSON' | 'PROTOBUF';
  /** The shared Money type, v1. */
  money: string;
  /** Money with `units` changed to a string: incompatible. */
  moneyBroken: string;
  /** How Order names Money (the reference's name). */
  refName: string;
  order: string;
}

const FORMATS: Format[] = [
  {
    type: SchemaType.AVRO,
    name: 'AVRO',
    money: JSON.stringify({
      type: 'record',
      name: 'Money',
      namespace: 'shared',
      fields: [
        { name: 'units', type: 'long' },
        { name: 'currency', type: 'string' },
      ],
    }),
    moneyBroken: JSON.stringify({
      type: 'record',
      name: 'Money',
      namespace: 'shared',
      fields: [
        { name: 'units', type: 'string' },
        { name: 'currency', type: 'string' },
      ],
    }),
    refName: 'shared.Money',
    order: JSON.stringify({
      type: 'record',
      name: 'Order',
      namespace: 'shop',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'total', type: 'shared.Money' },
      ],
    }),
  },
  {
    type: SchemaType.JSON,
    name: 'JSON',
    money: JSON.stringify({
      $id: 'https://sluice.dev/money.json',
      type: 'object',
      properties: { units: { type: 'integer' }, currency: { type: 'string' } },
      required: ['units', 'currency'],
      additionalProperties: false,
    }),
    moneyBroken: JSON.stringify({
      $id: 'https://sluice.dev/money.json',
      type: 'object',
      properties: { units: { type: 'string' }, currency: { type: 'string' } },
      required: ['units', 'currency'],
      additionalProperties: false,
    }),
    refName: 'https://sluice.dev/money.json',
    order: JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, total: { $ref: 'https://sluice.dev/money.json' } }, required: ['id', 'total'] }),
  },
  {
    type: SchemaType.PROTOBUF,
    name: 'PROTOBUF',
    money: 'syntax = "proto3";\npackage shared;\n\nmessage Money {\n  int32 units = 1;\n  string currency = 2;\n}\n',
    moneyBroken: 'syntax = "proto3";\npackage shared;\n\nmessage Money {\n  string units = 1;\n  string currency = 2;\n}\n',
    refName: 'shared/money.proto',
    order: 'syntax = "proto3";\npackage shop;\n\nimport "shared/money.proto";\n\nmessage Order {\n  string id = 1;\n  shared.Money total = 2;\n}\n',
  },
];

const ORDER = { id: 'o-1', total: { units: 1250, currency: 'EUR' } };

/** Plain data, whatever class or Long the client decoded into. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))) as unknown;

beforeAll(async () => {
  registry = await startRegistry({ config, logger, port: 0, topic });
});

afterAll(async () => {
  await registry?.close();
  await deleteRegistryTopic(config, logger, topic);
});

describe('schema types', () => {
  it('GET /schemas/types lists the three formats', async () => {
    expect((await call(registry.url, 'GET', '/schemas/types')).body).toEqual(['JSON', 'PROTOBUF', 'AVRO']);
  });
});

describe.each(FORMATS)('$name with a shared Money type in another subject', (format) => {
  const moneySubject = `money-${format.name.toLowerCase()}`;
  const orderSubject = `orders-${format.name.toLowerCase()}-value`;
  let orderId: number;

  it('the Confluent client registers Money and an Order that references it', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    await client.register({ type: format.type, schema: format.money } as never, { subject: moneySubject });
    const references = [{ name: format.refName, subject: moneySubject, version: 1 }];
    ({ id: orderId } = await client.register({ type: format.type, schema: format.order, references } as never, { subject: orderSubject }));
    const latest = await call(registry.url, 'GET', `/subjects/${orderSubject}/versions/latest`);
    expect(latest.body).toMatchObject({ id: orderId, references, ...(format.name === 'AVRO' ? {} : { schemaType: format.name }) });
    expect((await call(registry.url, 'GET', `/schemas/ids/${orderId}`)).body).toMatchObject({ references });
    expect((await call(registry.url, 'GET', `/subjects/${moneySubject}/versions/1/referencedby`)).body).toEqual([orderId]);
  });

  it('what the Confluent client encodes, Sluice decodes; what Sluice encodes, a fresh Confluent client decodes', async () => {
    const confluent = new SchemaRegistry({ host: registry.url });
    const theirs = await confluent.encode(orderId, ORDER);
    expect(theirs[0]).toBe(0);
    expect(theirs.readUInt32BE(1)).toBe(orderId);
    const sluice = new RegistryClient(registry.url);
    expect(plain((await decodeFramed(sluice, theirs)).value)).toEqual(ORDER);

    const encoder = createCodecEncoder(orderSubject, orderId, await sluice.codecById(orderId));
    const ours = encoder.encode(ORDER);
    if (format.name === 'JSON') expect(ours.subarray(5).toString('utf8')).toBe(JSON.stringify(ORDER));
    if (format.name === 'PROTOBUF') expect(ours[5]).toBe(0); // message indexes [0]
    const fresh = new SchemaRegistry({ host: registry.url });
    expect(plain(await fresh.decode(ours))).toEqual(ORDER);
  });

  it('an incompatible change to Money is refused, naming the field; the referenced version cannot be deleted', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    await expect(client.register({ type: format.type, schema: format.moneyBroken } as never, { subject: moneySubject })).rejects.toThrow(/units/);
    const verbose = await call(registry.url, 'POST', `/compatibility/subjects/${moneySubject}/versions/latest?verbose=true`, { schema: format.moneyBroken, schemaType: format.name });
    expect(verbose.body).toMatchObject({ is_compatible: false, messages: [expect.stringMatching(/units/)] });
    const refused = await call(registry.url, 'DELETE', `/subjects/${moneySubject}/versions/1`);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ error_code: 42206 });
  });
});

describe('per-subject mode', () => {
  it('PUT /mode/{subject} READONLY refuses a write with 42205; other subjects stay writable; DELETE lifts it', async () => {
    const subject = 'frozen-value';
    const schema = (field: string) => JSON.stringify({ type: 'object', properties: { [field]: { type: 'string' } } });
    expect((await call(registry.url, 'POST', `/subjects/${subject}/versions`, { schema: schema('a'), schemaType: 'JSON' })).status).toBe(200);
    expect((await call(registry.url, 'PUT', `/mode/${subject}`, { mode: 'READONLY' })).body).toEqual({ mode: 'READONLY' });
    expect((await call(registry.url, 'GET', `/mode/${subject}`)).body).toEqual({ mode: 'READONLY' });
    const refused = await call(registry.url, 'POST', `/subjects/${subject}/versions`, { schema: JSON.stringify({ type: 'object' }), schemaType: 'JSON' });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ error_code: 42205, message: expect.stringMatching(/READONLY/) });
    expect((await call(registry.url, 'POST', '/subjects/thawed-value/versions', { schema: schema('a'), schemaType: 'JSON' })).status).toBe(200);
    expect((await call(registry.url, 'DELETE', `/mode/${subject}`)).body).toEqual({ mode: 'READONLY' });
    expect((await call(registry.url, 'GET', `/mode/${subject}`)).body).toMatchObject({ error_code: 40409 });
    expect((await call(registry.url, 'GET', `/mode/${subject}?defaultToGlobal=true`)).body).toEqual({ mode: 'READWRITE' });
  });

  it('IMPORT mode keeps the ids it is given', async () => {
    expect((await call(registry.url, 'PUT', '/mode/imported-value', { mode: 'IMPORT' })).status).toBe(200);
    const imported = await call(registry.url, 'POST', '/subjects/imported-value/versions', { schema: '{"type":"string"}', id: 9000, version: 3 });
    expect(imported.body).toEqual({ id: 9000 });
    expect((await call(registry.url, 'GET', '/subjects/imported-value/versions/3')).body).toMatchObject({ id: 9000, version: 3 });
  });
});
