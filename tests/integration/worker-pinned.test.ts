import { AvroDeserializer, AvroSerializer, JsonataExecutor, RuleMode, SchemaRegistryClient, SerdeType } from '@confluentinc/schemaregistry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import { WorkerConfigError } from '../../core/errors.ts';
import { createCodec } from '../../core/formats/index.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createCodecEncoder } from '../../core/serde.ts';
import type { AnyHandler } from '../../consumers/handler.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { startWorker, type RunningWorker } from '../../consumers/start-worker.ts';
import type { KafkaProducer } from '../../kafka/index.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { subjectFor, type TopicSpec, type Topology, type ValueSchema, type WorkerSpec } from '../../topology/model.ts';
import { createTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';
import { toOutgoing } from '../support/workers.ts';

/**
 * Workers pinned to a major version by metadata (the topology's `input.useLatestWithMetadata`,
 * Confluent's use.latest.with.metadata) on the test broker with Sluice's registry: v1 (major_version 1)
 * has `size`, v2 (major_version 2, a new compatibility group) renamed it `height` with JSONATA UPGRADE and
 * DOWNGRADE rules. A worker pinned to 1 sees every record v1-shaped, one pinned to 2 v2-shaped, each
 * exactly what Confluent's own deserializer pinned the same way returns for the same bytes; a v3 registered
 * in major 2 while they run becomes the second worker's reader within seconds.
 */

JsonataExecutor.register();

const widget = (fields: object[]) => JSON.stringify({ type: 'record', name: 'Widget', namespace: 'pinned', fields: [{ name: 'id', type: 'string' }, ...fields] });
const V1 = widget([{ name: 'size', type: 'int' }]);
const V2 = widget([{ name: 'height', type: 'int' }]);
const V3 = widget([
  { name: 'height', type: 'int' },
  { name: 'color', type: 'string', default: 'none' },
]);
const MIGRATIONS = {
  migrationRules: [
    { name: 'size-to-height', kind: 'TRANSFORM', type: 'JSONATA', mode: RuleMode.UPGRADE, expr: "$merge([$sift($, function($v, $k) {$k != 'size'}), {'height': $.'size'}])" },
    { name: 'height-to-size', kind: 'TRANSFORM', type: 'JSONATA', mode: RuleMode.DOWNGRADE, expr: "$merge([$sift($, function($v, $k) {$k != 'height'}), {'size': $.'height'}])" },
  ],
};
const major = (value: string) => ({ properties: { major_version: value } });

const input = uniqueName('widgets');
const subject = subjectFor(input);
const outputs = { 1: uniqueName('widgets-v1'), 2: uniqueName('widgets-v2') };
const deadLetter = `${input}.dlq`;

const valueSchema = (topic: string, schemaType: 'AVRO' | 'JSON', text: string): ValueSchema => ({
  file: `${PROJECT_ROOT}/tests/(inline)`,
  subject: subjectFor(topic),
  schemaType,
  schema: JSON.parse(text) as never,
  text,
});
const topic = (name: string, schema?: ValueSchema): TopicSpec => ({ name, partitions: 1, replicationFactor: 1, configs: {}, ...(schema ? { valueSchema: schema } : {}) });
const ANY_OBJECT = JSON.stringify({ type: 'object' });
const topology: Topology = {
  file: `${PROJECT_ROOT}/tests/(pinned workers)`,
  // The topology's input schema is v2: the pin, not it, decides what each worker reads with.
  topics: [
    topic(input, valueSchema(input, 'AVRO', V2)),
    topic(outputs[1], valueSchema(outputs[1], 'JSON', ANY_OBJECT)),
    topic(outputs[2], valueSchema(outputs[2], 'JSON', ANY_OBJECT)),
    topic(deadLetter),
  ],
  routes: [],
  workers: [],
};
const spec = (pin: string, output: string): WorkerSpec => ({
  name: `widgets-major-${pin}`,
  input,
  output,
  deadLetter,
  groupId: uniqueName(`sluice.widgets-major-${pin}`),
  handler: '(inline)',
  delivery: 'at-least-once',
  useLatestWithMetadata: { major_version: pin },
});

/** What each worker's handler was given, by record key. */
const seen = { 1: new Map<string, unknown>(), 2: new Map<string, unknown>() };
const recording = (into: Map<string, unknown>): AnyHandler =>
  ((value: unknown, context: { key: string | null }) => {
    into.set(context.key!, value);
    return value;
  }) as AnyHandler;

let config: SluiceConfig;
let logger: Logger;
let registry: RunningRegistry;
let client: SchemaRegistryClient;
let producer: KafkaProducer;
const workers: RunningWorker[] = [];
const ids = { v1: 0, v2: 0 };
/** The bytes produced, by key. */
const written = new Map<string, Buffer>();

async function send(key: string, bytes: Buffer): Promise<void> {
  written.set(key, bytes);
  await producer.send([toOutgoing(input, { key, value: bytes })]);
}

/** A fresh client each time: Confluent's caches the metadata look-up for the life of the client. */
const confluentReader = (pin: string) => new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [registry.url] }), SerdeType.VALUE, { useLatestWithMetadata: { major_version: pin } });

async function until(what: string, done: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  config = testConfig({ logLevel: 'silent' });
  logger = testLogger(config);
  await createTopics([{ topic: input }, { topic: outputs[1] }, { topic: outputs[2] }, { topic: deadLetter }]);
  registry = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
  client = new SchemaRegistryClient({ baseURLs: [registry.url] });
  // A new major version starts a new compatibility group: v2's rename, which BACKWARD alone refuses, is allowed.
  await client.updateConfig(subject, { compatibilityGroup: 'major_version' });
  ids.v1 = await client.register(subject, { schemaType: 'AVRO', schema: V1, metadata: major('1') });
  ids.v2 = await client.register(subject, { schemaType: 'AVRO', schema: V2, metadata: major('2'), ruleSet: MIGRATIONS as never });
  producer = seam('sluice-test-producer').producer();
  const registryClient = new RegistryClient(registry.url);
  for (const pin of ['1', '2'] as const) {
    workers.push(await startWorker({ config, logger, spec: spec(pin, outputs[pin]), topology, registry: registryClient, handler: recording(seen[pin]), metrics: createWorkerMetrics() }));
  }
}, 120_000);

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await producer?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([input, outputs[1], outputs[2], deadLetter])).catch(() => undefined);
});

describe('workers pinned to a major version by metadata', () => {
  it('each reads every record in its own major version, migrated as Confluent’s deserializer pinned the same way reads it', async () => {
    // Written by Confluent's serializer pinned to each major version, framed with that version's id.
    const serializer = (pin: string) => new AvroSerializer(client, SerdeType.VALUE, { useLatestWithMetadata: { major_version: pin } });
    await send('w-1', await serializer('1').serialize(input, { id: 'w-1', size: 3 }));
    await send('w-2', await serializer('2').serialize(input, { id: 'w-2', height: 7 }));
    expect(written.get('w-1')!.readUInt32BE(1)).toBe(ids.v1);
    expect(written.get('w-2')!.readUInt32BE(1)).toBe(ids.v2);
    await until('both workers to handle both records', () => seen[1].size >= 2 && seen[2].size >= 2);

    // Pinned to 1: the v2 record downgraded by v2's DOWNGRADE rule; pinned to 2: the v1 record upgraded.
    expect(Object.fromEntries(seen[1])).toEqual({ 'w-1': { id: 'w-1', size: 3 }, 'w-2': { id: 'w-2', size: 7 } });
    expect(Object.fromEntries(seen[2])).toEqual({ 'w-1': { id: 'w-1', height: 3 }, 'w-2': { id: 'w-2', height: 7 } });
    for (const pin of ['1', '2'] as const) {
      for (const key of ['w-1', 'w-2']) expect(seen[pin].get(key)).toEqual(await confluentReader(pin).deserialize(input, written.get(key)!));
    }
  }, 90_000);

  it('a new version of the pinned major becomes the reader while the worker runs; the other pin is unmoved', async () => {
    // v3 adds a field with a default in major 2: compatible within its group.
    await client.register(subject, { schemaType: 'AVRO', schema: V3, metadata: major('2') });
    // The worker looks again every 2 s: v2 records are produced until one reaches its handler resolved into v3.
    const v2 = createCodecEncoder(subject, ids.v2, createCodec({ schemaType: 'AVRO', schema: V2, references: [] }));
    const resolved = () => [...seen[2].values()].some((v) => (v as { color?: string }).color === 'none');
    let n = 0;
    while (!resolved() && n < 100) {
      n += 1;
      const key = `w-3-${n}`;
      await send(key, v2.encode({ id: key, height: 5 }));
      await until(key, () => seen[2].has(key) && seen[1].has(key));
    }
    const key = `w-3-${n}`;
    expect(seen[2].get(key)).toEqual({ id: key, height: 5, color: 'none' });
    expect(seen[1].get(key)).toEqual({ id: key, size: 5 });
    expect(seen[1].get(key)).toEqual(await confluentReader('1').deserialize(input, written.get(key)!));
    // v3, registered without rules, inherited v2's (as in Confluent), so its UPGRADE rule runs on the v2 record. Confluent's
    // JavaScript deserializer hands over the migration's output as it is; Sluice resolves it into v3, `color` taking its default.
    expect(seen[2].get(key)).toEqual({ ...(await confluentReader('2').deserialize(input, written.get(key)!)), color: 'none' });
  }, 90_000);

  it('a worker pinned to a major version the registry does not have does not start, naming the property', async () => {
    const started = startWorker({ config, logger, spec: spec('9', outputs[1]), topology, registry: new RegistryClient(registry.url), handler: recording(new Map()), metrics: createWorkerMetrics() });
    await expect(started).rejects.toBeInstanceOf(WorkerConfigError);
    await expect(started).rejects.toThrow(/input\.useLatestWithMetadata: no version of .* has the metadata properties major_version=9/);
  }, 60_000);
});
