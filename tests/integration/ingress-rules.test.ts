import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../core/config.ts';
import { parseJson } from '../../core/json.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { orderTopology } from '../support/order-topology.ts';
import { createTestTopics, readTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';
import { deadLetterSummary, readDeadLetters } from '../../consumers/dead-letters.ts';

/**
 * The README's walk-through, against the broker: a ruleSet registered through the registry's REST API while
 * the ingress runs is enforced without a restart: a POST that passes, one refused 422 naming its rule with
 * nothing written, one written to the rule's dead-letter topic instead of the route's.
 */
let config: SluiceConfig;
let log: Logger;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let topic: string;
let dlq: string;
let seq = 0;

const order = (over: Record<string, unknown> = {}) => {
  seq += 1;
  return { orderId: `r-${seq}`, customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }], amount: 19, currency: 'EUR', placedAt: 1767225600000, ...over };
};

async function post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: response.status, body: parseJson(await response.text()) as Record<string, unknown> };
}

async function registryCall(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${registry.url}${path}`, {
    method,
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  config = testConfig({ lingerMs: '2' });
  log = testLogger(config, 'ingress-rules-test');
  topic = uniqueName('rules-orders');
  dlq = uniqueName('rules-orders-review');
  await createTestTopics([
    { name: topic, partitions: 1 },
    { name: dlq, partitions: 1 },
  ]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, 1), registry: new RegistryClient(registry.url), port: 0 });
});

afterAll(async () => {
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, dlq, config.registryTopic])).catch(() => undefined);
});

describe('rules registered while the ingress runs', () => {
  it('pass, refuse (422, nothing written) and dead-letter, and GET latest returns them', async () => {
    const subject = `${topic}-value`;
    const current = await registryCall('GET', `/subjects/${subject}/versions/latest`);
    const ruleSet = {
      domainRules: [
        { name: 'positive-amount', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0' },
        { name: 'review-large', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount < 1000.0', onFailure: 'DLQ', params: { 'dlq.topic': dlq } },
      ],
    };
    const registered = await registryCall('POST', `/subjects/${subject}/versions`, { schema: current.body.schema, ruleSet });
    expect(registered.status).toBe(200);
    expect((await registryCall('GET', `/subjects/${subject}/versions/latest`)).body).toMatchObject({ version: 2, ruleSet: { domainRules: [{ name: 'positive-amount' }, { name: 'review-large' }] } });

    // The ingress re-reads its contract every 2 s: wait until it refuses what the rule refuses.
    let refused = await post(order({ amount: -5 }));
    for (let i = 0; i < 50 && refused.status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      refused = await post(order({ amount: -5 }));
    }
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ error: 'SLUICE_RULE_FAILED', errors: [{ rule: 'positive-amount', subject, version: 2 }] });
    const refusedId = `r-${seq}`;

    const passed = await post(order({ amount: 40 }));
    expect(passed).toMatchObject({ status: 200, body: { topic, schemaId: registered.body.id } });
    const passedId = `r-${seq}`;
    const large = await post(order({ amount: 5000 }));
    expect(large).toMatchObject({ status: 200, body: { topic: dlq, deadLettered: { rule: 'review-large', subject, version: 2 } } });
    const largeId = `r-${seq}`;

    const onTopic = (await readTopics([topic])).map((r) => r.key?.toString());
    expect(onTopic).toContain(passedId);
    expect(onTopic).not.toContain(refusedId);
    expect(onTopic).not.toContain(largeId);
    const letters = await readTopics([dlq]);
    expect(letters.map((r) => r.key?.toString())).toEqual([largeId]);
    const headers = Object.fromEntries(letters[0]!.headers.map(([k, v]) => [k, v?.toString()]));
    expect(headers).toMatchObject({ '__rule.name': 'review-large', '__rule.subject': subject, '__rule.version': '2', '__rule.topic': topic });
    expect(parseJson(letters[0]!.value!.toString())).toMatchObject({ orderId: largeId, amount: 5000 });
    // `sluice dlq` and the console's dead-letter page say which rule sent it there, and from where.
    const [letter] = await withKafkaAdmin((admin) => readDeadLetters({ kafka: seam(), admin, log, topic: dlq }));
    expect(deadLetterSummary(letter!)).toMatchObject({
      errorClass: 'RuleFailed',
      errorCode: 'SLUICE_RULE_FAILED',
      errorMessage: expect.stringMatching(new RegExp(`^rule review-large of ${subject} version 2 \\(WRITE\\): `)),
    });
    expect(letter!.originalTopic).toBe(topic);
  });
});
