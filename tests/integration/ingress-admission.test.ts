import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { DRAIN_FLOOR_PER_S, SAMPLE_MS } from '../../producers/admission.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';
import { randomOrder } from '../support/orders.ts';
import { createTestTopics, readTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

const SCHEMA_FILE = `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`;
const PRODUCE_TIMEOUT_MS = 10_000;
/** 10% of the deadline: 1 s, so DRAIN_FLOOR_PER_S records queued fill the budget once nothing drains. */
const WAIT_PERCENT = 10;

function topologyFor(topic: string): Topology {
  const text = readFileSync(SCHEMA_FILE, 'utf8');
  const schema = JSON.parse(text) as NonNullable<Topology['topics'][number]['valueSchema']>['schema'];
  return {
    file: `${PROJECT_ROOT}/tests/integration/ingress.topology.yaml`,
    topics: [{ name: topic, partitions: 3, replicationFactor: 1, configs: {}, valueSchema: { file: SCHEMA_FILE, subject: subjectFor(topic), schema, text: JSON.stringify(schema) } }],
    routes: [{ method: 'POST', path: '/v1/orders', topic, key: 'orderId' }],
    workers: [],
  };
}

let config: SluiceConfig;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let topic: string;
/** While set, every send to Kafka waits for it: the backlog grows and nothing drains. */
let held: Promise<void> | undefined;
let release: () => void = () => {};

beforeAll(async () => {
  config = testConfig({ produceTimeoutMs: String(PRODUCE_TIMEOUT_MS), admissionWaitPercent: String(WAIT_PERCENT), lingerMs: '0' });
  const log = testLogger(config, 'admission-test');
  topic = uniqueName('admission-orders');
  await createTestTopics([{ name: topic, partitions: 3 }]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: topologyFor(topic), registry: new RegistryClient(registry.url), port: 0, beforeSend: () => held ?? Promise.resolve() });
});

afterAll(async () => {
  release();
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic])).catch(() => undefined);
});

async function post(order: { orderId: string }): Promise<{ status: number; retryAfter: string | null; body: Record<string, unknown>; orderId: string }> {
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Record<string, unknown>, orderId: order.orderId };
}

async function overloadedCount(): Promise<number> {
  const text = await (await fetch(`${ingress.url}/metrics`)).text();
  return Number(/^sluice_ingress_rejected_requests_total\{code="SLUICE_OVERLOADED"\} (\d+)/m.exec(text)?.[1] ?? '0');
}

describe('admission by the produce queue’s expected wait (real broker)', () => {
  it('refuses before Fastify once the backlog would wait longer than the budget, writes nothing refused, keeps the probes up, and admits again once Kafka drains', { timeout: 60_000 }, async () => {
    // Kafka stops draining: the first requests are admitted (nothing measured yet) and wait with their sends held.
    held = new Promise((resolve) => (release = resolve));
    // (On a busy box the first interval may end while they still arrive: the later ones are then refused already.)
    const waiting = Array.from({ length: 4 * DRAIN_FLOOR_PER_S }, () => post(randomOrder()));
    // Busy intervals with nothing acknowledged bring the estimate down to the floor: at least 50 records ÷ 50/s >= 1 s.
    await new Promise((resolve) => setTimeout(resolve, 4 * SAMPLE_MS));
    const refused = await Promise.all(Array.from({ length: 20 }, () => post(randomOrder())));
    for (const r of refused) {
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      expect(r.retryAfter).toBe('1');
      expect(r.body.error).toBe('SLUICE_OVERLOADED');
      // The fixed answer of the listener in front of Fastify (the producer's own queue bound says "limit ...").
      expect(r.body.message).toContain('within its produce deadline');
    }
    expect(await overloadedCount()).toBeGreaterThanOrEqual(20);
    for (const probe of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${ingress.url}${probe}`)).status, probe).toBe(200);

    // Kafka drains again: the held requests are acknowledged within their deadline, and new ones are admitted.
    release();
    held = undefined;
    const first = await Promise.all(waiting);
    const admitted = first.filter((r) => r.status === 200);
    expect(admitted.length).toBeGreaterThan(0);
    expect(first.filter((r) => r.status !== 200 && r.body.error !== 'SLUICE_OVERLOADED')).toEqual([]);
    refused.push(...first.filter((r) => r.status !== 200));
    const after = await post(randomOrder());
    expect(after.status).toBe(200);

    const written = new Set((await readTopics([topic])).map((r) => r.key?.toString('utf8')));
    expect([...admitted, after].filter((r) => !written.has(r.orderId))).toEqual([]);
    expect(refused.filter((r) => written.has(r.orderId))).toEqual([]);
  });
});
