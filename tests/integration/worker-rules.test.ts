import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import { createCodec } from '../../core/formats/index.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createCodecEncoder } from '../../core/serde.ts';
import { unframe } from '../../core/wire-format.ts';
import { emit, type AnyHandler } from '../../consumers/handler.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { startWorker, type RunningWorker } from '../../consumers/start-worker.ts';
import type { KafkaProducer } from '../../kafka/index.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { RULE_HEADERS } from '../../rules/index.ts';
import { subjectFor, type TopicSpec, type Topology, type ValueSchema, type WorkerSpec } from '../../topology/model.ts';
import { createTopics, seam, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { collect, headerText, offsetsOf, toOutgoing, type Collector } from '../support/workers.ts';

/**
 * Data contracts in a real exactly-once worker on the test broker: the input subject's v2 renamed
 * `size` to `height` with a JSONATA UPGRADE rule and carries a READ rule (`height > 0`); the worker
 * reads with v2. A v1 record is migrated before the handler sees it, a record the READ rule refuses is
 * dead-lettered with __rule.* headers naming the rule, and an output the output subject's WRITE rule
 * refuses dead-letters its input, while a WRITE transform masks PII on the way out.
 */

const V1 = JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, size: { type: 'number' } }, required: ['id', 'size'] });
const V2 = JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, height: { type: 'number' }, ssn: { type: 'string' } }, required: ['id', 'height'] });
const OUT = JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, label: { type: 'string' }, height: { type: 'number' }, ssn: { type: 'string' } }, required: ['id', 'label'] });

const INPUT_RULES = {
  ruleSet: {
    migrationRules: [{ name: 'size-to-height', kind: 'TRANSFORM', mode: 'UPGRADE', type: 'JSONATA', expr: '$merge([$sift($, function($v, $k) {$k != "size"}), {"height": size}])' }],
    domainRules: [{ name: 'positive-height', kind: 'CONDITION', mode: 'READ', type: 'CEL', expr: 'message.height > 0.0' }],
  },
};
const OUTPUT_RULES = {
  metadata: { tags: { '**.ssn': ['PII'] } },
  ruleSet: {
    domainRules: [
      { name: 'mask-pii', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" },
      { name: 'fits-shelf', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.height < 1000.0' },
    ],
  },
};

const input = uniqueName('parcels');
const output = uniqueName('labels');
const deadLetter = `${input}.dlq`;
const valueSchema = (topic: string, text: string): ValueSchema => ({
  file: `${PROJECT_ROOT}/tests/(inline).json`,
  subject: subjectFor(topic),
  schemaType: 'JSON',
  schema: JSON.parse(text) as never,
  text,
});
const topic = (name: string, text?: string): TopicSpec => ({ name, partitions: 1, replicationFactor: 1, configs: {}, ...(text ? { valueSchema: valueSchema(name, text) } : {}) });
const spec: WorkerSpec = { name: 'label-parcels', input, output, deadLetter, groupId: uniqueName('sluice.label-parcels'), handler: '(inline)', delivery: 'exactly-once' };
const topology: Topology = { file: `${PROJECT_ROOT}/tests/(worker rules)`, topics: [topic(input, V2), topic(output, OUT), topic(deadLetter)], routes: [], workers: [spec] };

const handler: AnyHandler = ((parcel: { id: string; height: number; ssn?: string }) =>
  emit({ id: parcel.id, label: `${parcel.height} cm`, height: parcel.height, ...(parcel.ssn ? { ssn: parcel.ssn } : {}) }, { key: parcel.id })) as AnyHandler;

let config: SluiceConfig;
let registry: RunningRegistry;
let client: RegistryClient;
let worker: RunningWorker;
let collector: Collector;
let producer: KafkaProducer;
const ids = { v1: 0, v2: 0, out: 0 };

async function register(subject: string, schema: string, extra: object = {}): Promise<number> {
  const { id } = await client.request<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schemaType: 'JSON', schema, ...extra });
  return id;
}

beforeAll(async () => {
  config = testConfig({ logLevel: 'silent' });
  const logger = testLogger(config);
  await createTopics([{ topic: input }, { topic: output }, { topic: deadLetter }]);
  registry = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
  client = new RegistryClient(registry.url);
  // v2 renames a required field: not backward compatible, which is what the migration rule is for.
  await client.request('PUT', `/config/${encodeURIComponent(subjectFor(input))}`, { compatibility: 'NONE' });
  ids.v1 = await register(subjectFor(input), V1);
  ids.v2 = await register(subjectFor(input), V2, INPUT_RULES);
  ids.out = await register(subjectFor(output), OUT, OUTPUT_RULES);
  collector = await collect([output, deadLetter]);
  producer = seam('sluice-test-producer').producer();
  worker = await startWorker({ config, logger, spec, topology, registry: client, handler, metrics: createWorkerMetrics() });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await collector?.close();
  await producer?.close();
  await registry?.close();
});

/** A record framed with the id of input version 1 or 2, as a producer on that version writes it. */
const framed = (version: 1 | 2, value: unknown) =>
  createCodecEncoder(subjectFor(input), version === 1 ? ids.v1 : ids.v2, createCodec({ schemaType: 'JSON', schema: version === 1 ? V1 : V2, references: [] })).encode(value);

describe('data contracts in a worker', () => {
  it('migrates v1 records for the v2 reader, dead-letters what READ and WRITE rules refuse, masks outputs, in one transaction with the offsets', async () => {
    const records = [
      { key: 'a', value: framed(1, { id: 'a', size: 12 }) },
      { key: 'b', value: framed(2, { id: 'b', height: 30, ssn: '123-45-6789' }) },
      { key: 'c', value: framed(2, { id: 'c', height: -1 }) },
      { key: 'd', value: framed(1, { id: 'd', size: -4 }) },
      { key: 'e', value: framed(2, { id: 'e', height: 5000 }) },
    ];
    await producer.send(records.map((r) => toOutgoing(input, r)));

    const seen = await collector.waitFor((rs) => rs.length >= 5, 60_000, 'two outputs and three dead letters');
    const outputs = seen.filter((r) => r.topic === output);
    const letters = seen.filter((r) => r.topic === deadLetter);
    const valueOf = (value: Buffer | null) => JSON.parse(unframe(value).payload.toString('utf8')) as Record<string, unknown>;

    // The v1 record reached the handler as v2 (size → height); the output is masked and framed with the version carrying the rules.
    expect(outputs.map((r) => valueOf(r.value))).toEqual([
      { id: 'a', label: '12 cm', height: 12 },
      { id: 'b', label: '30 cm', height: 30, ssn: '***' },
    ]);
    for (const r of outputs) expect(unframe(r.value).schemaId).toBe(ids.out);

    const letter = (key: string) => letters.find((r) => r.key?.toString() === key)!;
    const rule = (key: string) => ({
      name: headerText(letter(key).headers, RULE_HEADERS.name),
      mode: headerText(letter(key).headers, RULE_HEADERS.mode),
      subject: headerText(letter(key).headers, RULE_HEADERS.subject),
      version: headerText(letter(key).headers, RULE_HEADERS.version),
      code: headerText(letter(key).headers, 'sluice.error.code'),
    });
    expect(letters.map((r) => r.key?.toString()).sort()).toEqual(['c', 'd', 'e']);
    // READ rules run on what the reader sees: a v2 record, and a v1 record after its migration.
    expect(rule('c')).toEqual({ name: 'positive-height', mode: 'READ', subject: subjectFor(input), version: '2', code: 'SLUICE_RULE_FAILED' });
    expect(rule('d')).toEqual({ name: 'positive-height', mode: 'READ', subject: subjectFor(input), version: '2', code: 'SLUICE_RULE_FAILED' });
    // The WRITE rule refused the handler's output: its input is dead-lettered, nothing is emitted for it.
    expect(rule('e')).toEqual({ name: 'fits-shelf', mode: 'WRITE', subject: subjectFor(output), version: '1', code: 'SLUICE_RULE_FAILED' });
    // A dead letter keeps the input's bytes as read, so `sluice dlq replay` can send it back.
    expect(letter('d').value).toEqual(records[3]!.value);

    const { committed, ends } = await offsetsOf(spec.groupId, input);
    expect(committed.get(0)).toBe(ends.get(0));
  }, 90_000);
});
