import { AvroDeserializer, AvroSerializer, CelExecutor, CelFieldExecutor, JsonataExecutor, RuleMode, SchemaRegistryClient, SerdeType, type RuleSet } from '@confluentinc/schemaregistry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../core/config.ts';
import { parseJson } from '../../core/json.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { ORDER_DEFAULTS, orderTopology } from '../support/order-topology.ts';
import { createTestTopics, readTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * Confluent's own JavaScript client (@confluentinc/schemaregistry, the one its Java, Go and Python
 * siblings mirror) against Sluice's registry and ingress: it registers a data contract, its
 * serializer and Sluice's ingress give the same verdicts and the same bytes for the same event, its
 * deserializer reads what the ingress wrote, and migrations between major versions pinned by
 * metadata run from the rules Sluice's registry keeps.
 */

CelExecutor.register();
CelFieldExecutor.register();
JsonataExecutor.register();

let config: SluiceConfig;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let topic: string;
let seq = 0;

const order = (over: Record<string, unknown> = {}) => {
  seq += 1;
  return { orderId: `ci-${seq}`, customerId: `customer-${seq}`, items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }], amount: 19, currency: 'EUR', placedAt: 1767225600000, ...over };
};

async function post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: response.status, body: parseJson(await response.text()) as Record<string, unknown> };
}

beforeAll(async () => {
  config = testConfig({ lingerMs: '2' });
  const log = testLogger(config, 'confluent-rules-test');
  topic = uniqueName('confluent-orders');
  await createTestTopics([{ name: topic, partitions: 1 }]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, 1), registry: new RegistryClient(registry.url), port: 0 });
});

afterAll(async () => {
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic])).catch(() => undefined);
});

describe('@confluentinc/schemaregistry against Sluice', () => {
  it('a contract registered by the Confluent client: same verdicts, same masked bytes, and its deserializer reads the ingress', async () => {
    const subject = `${topic}-value`;
    const client = new SchemaRegistryClient({ baseURLs: [registry.url] });
    const current = await client.getLatestSchemaMetadata(subject);
    const ruleSet: RuleSet = {
      domainRules: [
        { name: 'positive-amount', kind: 'CONDITION', mode: RuleMode.WRITE, type: 'CEL', expr: 'message.amount > 0' },
        { name: 'mask-customer', kind: 'TRANSFORM', mode: RuleMode.WRITE, type: 'CEL_FIELD', tags: ['PII'], expr: "typeName == 'STRING' ; 'redacted'" },
      ],
    };
    const id = await client.register(subject, { schemaType: 'AVRO', schema: current.schema!, metadata: { tags: { '**.customerId': ['PII'] }, properties: { owner: 'orders-team' } }, ruleSet });
    expect(id).not.toBe(current.id);

    // What the Confluent client reads back is what it registered, rules and metadata included.
    const latest = await new SchemaRegistryClient({ baseURLs: [registry.url] }).getLatestSchemaMetadata(subject);
    expect(latest).toMatchObject({ id, version: current.version! + 1, metadata: { tags: { '**.customerId': ['PII'] }, properties: { owner: 'orders-team' } }, ruleSet });

    // A new client: the first one cached `latest` from before the registration.
    const serializer = new AvroSerializer(new SchemaRegistryClient({ baseURLs: [registry.url] }), SerdeType.VALUE, { useLatestVersion: true });
    await expect(serializer.serialize(topic, order({ amount: -5 }))).rejects.toThrow(/positive-amount/);

    // The ingress re-reads its contract every 2 s: wait until it refuses what the rule refuses.
    let refused = await post(order({ amount: -5 }));
    for (let i = 0; i < 50 && refused.status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      refused = await post(order({ amount: -5 }));
    }
    expect(refused).toMatchObject({ status: 422, body: { error: 'SLUICE_RULE_FAILED', errors: [{ rule: 'positive-amount', subject }] } });

    const event = { ...order(), ...ORDER_DEFAULTS };
    expect(await post(event)).toMatchObject({ status: 200, body: { topic, schemaId: id } });
    const confluentBytes = await serializer.serialize(topic, event);
    const [written] = (await readTopics([topic])).filter((r) => r.key?.toString() === event.orderId);
    expect(written).toBeDefined();
    // The same event, through either edge, is the same record value: framing, schema id and the masked field.
    expect(written!.value!.toString('hex')).toBe(confluentBytes.toString('hex'));

    const deserializer = new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [registry.url] }), SerdeType.VALUE, {});
    expect(await deserializer.deserialize(topic, written!.value!)).toEqual({ ...event, customerId: 'redacted' });
  });

  it('migrations between major versions pinned by metadata, served by Sluice', async () => {
    const widgets = uniqueName('widgets');
    const subject = `${widgets}-value`;
    const client = new SchemaRegistryClient({ baseURLs: [registry.url] });
    // A new major version starts a new compatibility group: v2 renames a field, which BACKWARD alone refuses.
    await client.updateConfig(subject, { compatibilityGroup: 'application.major.version' });
    const widget = (field: string) =>
      JSON.stringify({
        type: 'record',
        name: 'Widget',
        namespace: 'interop',
        fields: [
          { name: 'id', type: 'string' },
          { name: field, type: 'int' },
        ],
      });
    await client.register(subject, { schemaType: 'AVRO', schema: widget('size'), metadata: { properties: { 'application.major.version': '1' } } });
    await client.register(subject, {
      schemaType: 'AVRO',
      schema: widget('height'),
      metadata: { properties: { 'application.major.version': '2' } },
      ruleSet: {
        migrationRules: [
          { name: 'size-to-height', kind: 'TRANSFORM', type: 'JSONATA', mode: RuleMode.UPGRADE, expr: "$merge([$sift($, function($v, $k) {$k != 'size'}), {'height': $.'size'}])" },
          { name: 'height-to-size', kind: 'TRANSFORM', type: 'JSONATA', mode: RuleMode.DOWNGRADE, expr: "$merge([$sift($, function($v, $k) {$k != 'height'}), {'size': $.'height'}])" },
        ],
      },
    });
    const pinned = (major: string) => ({ useLatestWithMetadata: { 'application.major.version': major } });
    const v1Bytes = await new AvroSerializer(client, SerdeType.VALUE, pinned('1')).serialize(widgets, { id: 'w-1', size: 3 });
    const v2Bytes = await new AvroSerializer(client, SerdeType.VALUE, pinned('2')).serialize(widgets, { id: 'w-2', height: 7 });
    expect(v1Bytes.readUInt32BE(1)).not.toBe(v2Bytes.readUInt32BE(1));

    const reader = (major: string) => new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [registry.url] }), SerdeType.VALUE, pinned(major));
    expect(await reader('2').deserialize(widgets, v1Bytes)).toEqual({ id: 'w-1', height: 3 });
    expect(await reader('1').deserialize(widgets, v2Bytes)).toEqual({ id: 'w-2', size: 7 });
  });
});
