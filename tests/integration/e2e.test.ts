import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { hasKcat, kcatReadAll } from '../support/kcat.ts';
import { randomOrder, type OrderPlacedInput } from '../support/orders.ts';
import { duplicateKeys, freePort, runSluice, waitForOk, type SluiceProcess } from '../support/processes.ts';
import { brokers, uniqueName } from '../support/platform.ts';

/**
 * The whole platform as a user runs it: `sluice up` (registry, topology, ingress,
 * score-orders worker) against the test broker; events posted over HTTP come out
 * scored on orders.scored, read back by librdkafka (kcat) and decoded through the
 * registry by Confluent's JavaScript client, neither of which is Sluice code.
 */
describe('end to end: POST /v1/orders -> orders.placed -> score-orders -> orders.scored', () => {
  let env: NodeJS.ProcessEnv;
  let ingressUrl: string;
  let registryUrl: string;
  let sluice: SluiceProcess;
  const posted: OrderPlacedInput[] = [];
  const schemaIds = new Set<number>();

  beforeAll(async () => {
    const [ingressPort, registryPort] = [await freePort(), await freePort()];
    ingressUrl = `http://127.0.0.1:${ingressPort}`;
    registryUrl = `http://127.0.0.1:${registryPort}`;
    env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_INGRESS_PORT: String(ingressPort),
      SLUICE_REGISTRY_PORT: String(registryPort),
      SLUICE_REGISTRY_URL: registryUrl,
      SLUICE_REGISTRY_TOPIC: uniqueName('_schemas_e2e'),
    };
    sluice = runSluice(['up'], env);
    await waitForOk(`${ingressUrl}/readyz`, sluice);
  });

  afterAll(async () => {
    if (sluice.child.exitCode === null) {
      sluice.child.kill('SIGKILL');
      await sluice.exited;
    }
  });

  it('accepts 20 valid events posted one by one, each with its offset', async () => {
    for (let i = 0; i < 20; i++) {
      const order = randomOrder();
      const response = await fetch(`${ingressUrl}/v1/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-correlation-id': `e2e-${i}` },
        body: JSON.stringify(order),
      });
      const body = (await response.json()) as { topic: string; partition: number; offset: string; schemaId: number };
      expect(response.status, JSON.stringify(body)).toBe(200);
      expect(response.headers.get('x-correlation-id')).toBe(`e2e-${i}`);
      expect(body.topic).toBe('orders.placed');
      expect(body.offset).toMatch(/^\d+$/);
      schemaIds.add(body.schemaId);
      posted.push(order);
    }
    expect(schemaIds.size).toBe(1);
  });

  it.each([
    ['malformed JSON', '{"orderId": "x",', 400],
    ['a wrong type', JSON.stringify({ ...randomOrder(), amount: 'a lot' }), 400],
    ['an empty object', '{}', 400],
  ])('refuses %s with a 4xx that names the problem', async (_name, body, status) => {
    const response = await fetch(`${ingressUrl}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(status);
    const error = (await response.json()) as { error: string; message: string };
    expect(error.error).toMatch(/^SLUICE_/);
    expect(error.message.length).toBeGreaterThan(5);
  });

  it.skipIf(!hasKcat)('every posted event appears scored on orders.scored, read by kcat and decoded by the Confluent client', async () => {
    const confluent = new SchemaRegistry({ host: registryUrl });
    const wanted = new Map(posted.map((o) => [o.orderId, o]));
    const found = new Map<string, { score: number; verdict: string; customerId: string; amount: number }>();
    const deadline = Date.now() + 45_000;
    while (found.size < wanted.size && Date.now() < deadline) {
      for (const record of kcatReadAll(brokers(), 'orders.scored')) {
        if (!record.value || !record.key) continue;
        const key = record.key.toString('utf8');
        if (!wanted.has(key) || found.has(key)) continue;
        expect(record.value[0]).toBe(0);
        found.set(key, (await confluent.decode(record.value)) as { score: number; verdict: string; customerId: string; amount: number });
      }
      if (found.size < wanted.size) await sleep(500);
    }
    expect([...found.keys()].sort()).toEqual([...wanted.keys()].sort());
    for (const [orderId, scored] of found) {
      const order = wanted.get(orderId)!;
      expect(scored.customerId).toBe(order.customerId);
      expect(scored.amount).toBe(order.amount);
      expect(scored.score).toBeGreaterThanOrEqual(0);
      expect(scored.score).toBeLessThanOrEqual(100);
      expect(['ACCEPT', 'REVIEW', 'REJECT']).toContain(scored.verdict);
    }
  });

  it('stops cleanly on SIGTERM and, started again, serves the same schema ids', async () => {
    const [id] = [...schemaIds];
    const before = await (await fetch(`${registryUrl}/schemas/ids/${id}`)).json();
    sluice.child.kill('SIGTERM');
    expect(await sluice.exited).toBe(0);
    const logLines = sluice
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(5);
    for (const line of logLines) {
      const entry = JSON.parse(line) as { msg?: string; level?: number };
      expect(duplicateKeys(line), line).toEqual([]);
      expect(entry.level, line).toBeLessThan(50);
    }
    expect(sluice.output()).toMatch(/"msg":"shutting down"/);

    sluice = runSluice(['up'], env);
    await waitForOk(`${ingressUrl}/readyz`, sluice);
    const after = await fetch(`${registryUrl}/schemas/ids/${id}`);
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual(before);
    const again = await fetch(`${ingressUrl}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(randomOrder()) });
    expect(((await again.json()) as { schemaId: number }).schemaId).toBe(id);
    sluice.child.kill('SIGTERM');
    expect(await sluice.exited).toBe(0);
  });
});
