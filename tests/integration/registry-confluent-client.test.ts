import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../core/registry-client.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { deleteRegistryTopic, recordSchema, registryTestConfig } from './registry-helpers.ts';

const { config, logger, topic } = registryTestConfig();
let registry: RunningRegistry;

const orderV1 = recordSchema('Order', [
  { name: 'id', type: 'string' },
  { name: 'amount', type: 'double' },
]);
const orderV2 = recordSchema('Order', [
  { name: 'id', type: 'string' },
  { name: 'amount', type: 'double' },
  { name: 'note', type: ['null', 'string'], default: null },
]);

beforeAll(async () => {
  registry = await startRegistry({ config, logger, port: 0, topic });
});

afterAll(async () => {
  await registry?.close();
  await deleteRegistryTopic(config, logger, topic);
});

describe('@kafkajs/confluent-schema-registry against Sluice', () => {
  it('registers, finds the latest id, encodes and decodes', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    const { id } = await client.register({ type: SchemaType.AVRO, schema: orderV1 }, { subject: 'orders-value' });
    expect(id).toBe(1);
    const { id: id2 } = await client.register({ type: SchemaType.AVRO, schema: orderV2 }, { subject: 'orders-value' });
    expect(id2).toBe(2);
    expect(await client.getLatestSchemaId('orders-value')).toBe(2);

    const encoded = await client.encode(id, { id: 'o-1', amount: 12.5 });
    expect(encoded[0]).toBe(0);
    expect(encoded.readUInt32BE(1)).toBe(id);

    // A fresh client has nothing cached: decoding fetches the schema by id.
    const fresh = new SchemaRegistry({ host: registry.url });
    expect(await fresh.decode(encoded)).toEqual({ id: 'o-1', amount: 12.5 });
    expect(await fresh.getSchema(2)).toMatchObject({ name: 'test.Order' });
  });

  it('surfaces our 409 as an error from the client', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    const incompatible = recordSchema('Order', [{ name: 'id', type: 'long' }]);
    await expect(client.register({ type: SchemaType.AVRO, schema: incompatible }, { subject: 'orders-value' })).rejects.toThrow(/incompatible/);
  });

  it("works with Sluice's own registry client", async () => {
    const client = new RegistryClient(registry.url);
    expect(await client.register('orders-value', orderV2)).toBe(2);
    expect(await client.latest('orders-value')).toMatchObject({ subject: 'orders-value', version: 2, id: 2 });
    const types = await client.typesById(1);
    expect(types.fast.toBuffer({ id: 'x', amount: 1 }).length).toBeGreaterThan(0);
  });
});
