import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { startWorker, type RunningWorker } from '../../consumers/start-worker.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { createTopics, testConfig, testLogger } from '../support/platform.ts';
import { formatsTopology } from '../support/formats-topology.ts';
import { tailToEnd } from '../support/tail.ts';
import { collect, type Collector } from '../support/workers.ts';

/**
 * topology/formats.topology.yaml end to end: one route per format (Avro, JSON
 * Schema, Protobuf) through the ingress onto its topic, read back by
 * @kafkajs/confluent-schema-registry and by `sluice tail`; the Protobuf topic
 * through a worker that writes JSON Schema.
 */

const FORMATS = ['avro', 'json', 'proto'] as const;
let config: SluiceConfig;
let registry: RunningRegistry;
let ingress: Ingress;
let worker: RunningWorker;
let collector: Collector;
const { topology, renamed } = formatsTopology('e2e');

beforeAll(async () => {
  config = testConfig();
  const logger = testLogger(config);
  registry = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
  await createTopics(topology.topics.map((t) => ({ topic: t.name, numPartitions: t.partitions })));
  const client = new RegistryClient(registry.url);
  ingress = await startIngress({ config, logger, topology, registry: client, port: 0 });
  worker = await startWorker({ config, logger, spec: topology.workers[0]!, topology, registry: client, metrics: createWorkerMetrics() });
  collector = await collect(topology.topics.map((t) => t.name));
}, 120_000);

afterAll(async () => {
  await collector?.close();
  await worker?.stop();
  await ingress?.close();
  await registry?.close();
});

async function post(format: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${ingress.url}/v1/payments/${format}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const payment = (format: string) => ({ paymentId: `p-${format}`, amountCents: 250_000, currency: 'GBP' });

describe('one topic per schema format', () => {
  it.each(FORMATS)('POST /v1/payments/%s lands on its topic in its framing, readable by the Confluent client', async (format) => {
    const answer = await post(format, payment(format));
    expect(answer.status).toBe(200);
    const topic = renamed(`payments.${format}`);
    expect(answer.body).toMatchObject({ topic });
    const [record] = await collector.waitFor((rs) => rs.some((r) => r.topic === topic), 30_000, topic);
    const value = collector.records.find((r) => r.topic === topic)!.value!;
    expect(record).toBeDefined();
    expect(value[0]).toBe(0);
    expect(value.readUInt32BE(1)).toBe(answer.body.schemaId);
    if (format === 'json') expect(JSON.parse(value.subarray(5).toString('utf8'))).toEqual(payment(format));
    if (format === 'proto') expect(value[5]).toBe(0); // message-index list [0]
    const decoded = JSON.parse(JSON.stringify(await new SchemaRegistry({ host: registry.url }).decode(value))) as Record<string, unknown>;
    expect(decoded).toMatchObject({ paymentId: `p-${format}`, currency: 'GBP' });
    expect(Number(decoded.amountCents)).toBe(250_000);
  });

  it.each(FORMATS)('a bad event to /v1/payments/%s is a 400 naming the fields', async (format) => {
    const answer = await post(format, { paymentId: 7, amountCents: 1, currency: 'JPY' });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('SLUICE_VALIDATION_FAILED');
    const paths = (answer.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['currency', 'paymentId']);
  });

  it('the worker decodes Protobuf and emits JSON Schema', async () => {
    const audit = renamed('payments.audit');
    await collector.waitFor((rs) => rs.some((r) => r.topic === audit), 60_000, audit);
    const value = collector.records.find((r) => r.topic === audit)!.value!;
    expect(JSON.parse(value.subarray(5).toString('utf8'))).toEqual({ paymentId: 'p-proto', amountCents: 250_000, currency: 'GBP', large: true });
    expect(worker.counters.deadLettered).toBe(0);
  });

  it.each([...FORMATS, 'audit'])('sluice tail decodes payments.%s', async (name) => {
    const env = { KAFKA_BROKERS: config.kafkaBrokers!.join(','), SLUICE_REGISTRY_URL: registry.url, SLUICE_LOG_LEVEL: 'warn' };
    const { code, stdout, stderr } = await tailToEnd([renamed(`payments.${name}`), '--from-beginning', '--max', '1', '--format', 'ndjson'], env, 60_000);
    expect(code, stderr).toBe(0);
    const line = JSON.parse(stdout.trim().split('\n')[0]!) as { value: Record<string, unknown> };
    expect(line.value).toMatchObject({ paymentId: name === 'audit' ? 'p-proto' : `p-${name}`, amountCents: 250_000, currency: 'GBP' });
  });
});
