import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../core/config.ts';
import { parseJson } from '../../core/json.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { orderTopology } from '../support/order-topology.ts';
import { createTestTopics, readTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

let seq = 0;
function order(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return { orderId: `p-${seq}`, customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }], amount: 19, currency: 'EUR', placedAt: 1767225600000, ...over };
}

let config: SluiceConfig;
let log: Logger;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let topic: string;

interface Result {
  index: number;
  status: number;
  partition?: number;
  offset?: string;
  error?: string;
  path?: string;
  errors?: { path: string; message: string }[];
}

async function post(query: string, body: unknown): Promise<{ status: number; body: { produced?: number; failed?: number; results: Result[]; message?: string } }> {
  const response = await fetch(`${ingress.url}/v1/orders${query}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: response.status, body: parseJson(await response.text()) as never };
}

async function onTopic(): Promise<Set<string>> {
  const records = await readTopics([topic]);
  return new Set(records.map((r) => r.key!.toString()));
}

beforeAll(async () => {
  config = testConfig({ lingerMs: '2' });
  log = testLogger(config, 'ingress-partial-test');
  topic = uniqueName('partial-orders');
  await createTestTopics([{ name: topic, partitions: 2 }]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, 2), registry: new RegistryClient(registry.url), port: 0 });
});

afterAll(async () => {
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic])).catch(() => undefined);
});

describe('POST ?partial=true', () => {
  it('writes the valid events and answers 207 with one result per index', async () => {
    const good = [order(), order()];
    const bad = order({ amount: 'lots', items: [{ sku: 'SKU-1', quantity: 'two', unitPrice: 1 }] });
    const reply = await post('?partial=true', [good[0], bad, good[1]]);
    expect(reply.status).toBe(207);
    expect(reply.body.produced).toBe(2);
    expect(reply.body.failed).toBe(1);
    const [first, second, third] = reply.body.results;
    expect(first).toMatchObject({ index: 0, status: 200 });
    expect(third).toMatchObject({ index: 2, status: 200 });
    expect(first!.offset).toMatch(/^\d+$/);
    expect(second).toMatchObject({ index: 1, status: 400, error: 'SLUICE_VALIDATION_FAILED' });
    expect(second!.errors!.map((e) => e.path).sort()).toEqual(['amount', 'items[0].quantity']);
    const keys = await onTopic();
    expect(keys.has(good[0]!.orderId as string) && keys.has(good[1]!.orderId as string)).toBe(true);
    expect(keys.has(bad.orderId as string)).toBe(false);
  });

  it('all valid: 207 with every result written', async () => {
    const reply = await post('?partial=true', [order(), order()]);
    expect(reply.status).toBe(207);
    expect(reply.body.results.map((r) => r.status)).toEqual([200, 200]);
  });

  it('all invalid: 207 with every result an error, nothing written', async () => {
    const bad = [order({ currency: 7 }), order({ customerId: null })];
    const reply = await post('?partial=true', bad);
    expect(reply.status).toBe(207);
    expect(reply.body.produced).toBe(0);
    expect(reply.body.results.map((r) => [r.status, r.path])).toEqual([
      [400, 'currency'],
      [400, 'customerId'],
    ]);
    const keys = await onTopic();
    for (const b of bad) expect(keys.has(b.orderId as string)).toBe(false);
  });

  it('stays all or nothing by default, and refuses a bad partial value naming it', async () => {
    const bad = [order(), order({ amount: 'x' })];
    const reply = await post('', bad);
    expect(reply.status).toBe(400);
    expect((await onTopic()).has(bad[0]!.orderId as string)).toBe(false);
    const wrong = await post('?partial=yes', [order()]);
    expect(wrong.status).toBe(400);
    expect(wrong.body.message).toMatch(/^partial:/);
  });
});
