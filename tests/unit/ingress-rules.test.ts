import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodec } from '../../core/formats/index.ts';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../core/config.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';
import type { BatchingProducer } from '../../producers/batching-producer.ts';
import { registerBodyParsers } from '../../producers/body-parsers.ts';
import { SubjectContracts } from '../../rules/index.ts';
import errorMapper from '../../core/http-errors.ts';
import { ingressErrors } from '../../producers/ingress-errors.ts';
import { registerRoutes, type RouteBinding } from '../../producers/routes.ts';
import type { RouteSpec } from '../../topology/model.ts';
import { ORDER_RULES } from '../support/order-rules.ts';

/**
 * The WRITE rules of a route's subject at the HTTP edge: ERROR refuses (422 naming rule, subject, version,
 * field) with nothing written, DLQ writes the event to the rule's topic with __rule.* headers, transforms
 * apply before encoding, and a ruleSet changed in the registry is picked up by the next refresh.
 */
const SCHEMA = JSON.stringify({ type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' }, ssn: { type: 'string' } }, required: ['orderId'] });
const codec = createCodec({ schemaType: 'JSON', schema: SCHEMA, references: [] });
const binding: RouteBinding = { route: { path: '/v1/orders', topic: 'orders', key: 'orderId' } as RouteSpec, subject: 'orders-value', schemaId: 1, codec, schemaText: SCHEMA };

/** The registry's answer to the route's look-up; tests swap it to change the rules. */
let lookup: Record<string, unknown> = { id: 7, version: 2, ...ORDER_RULES };
const registry = { request: async () => lookup } as unknown as RegistryClient;
const produced: OutgoingRecord[][] = [];
const producer = {
  produce: async (records: OutgoingRecord[]) => {
    produced.push(records);
    return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: String(i) }));
  },
} as unknown as BatchingProducer;

let app: FastifyInstance;
let contracts: SubjectContracts<RouteBinding>;

const post = async (body: unknown, query = '') => {
  const response = await app.inject({ method: 'POST', url: `/v1/orders${query}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
};
const header = (record: OutgoingRecord, name: string) => record.headers?.find(([n]) => n === name)?.[1]?.toString();

beforeAll(async () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  const log = createLogger(config, 'ingress-rules');
  contracts = new SubjectContracts(registry, [binding], log);
  await contracts.refresh();
  app = Fastify();
  void app.register(errorMapper, ingressErrors({ bodyLimit: 1 << 20, produceTimeoutMs: 1000, rejected: { inc: () => undefined }, routes: [] }));
  registerBodyParsers(app);
  registerRoutes(app, [binding], { producer, contracts });
  await app.ready();
});
afterAll(async () => app.close());

describe('WRITE rules at the ingress', () => {
  it('masks before encoding and frames with the version that carries the rules', async () => {
    produced.length = 0;
    const answer = await post({ orderId: 'o-1', amount: 5, ssn: '123-45-6789' });
    expect(answer).toEqual({ status: 200, body: { topic: 'orders', partition: 0, offset: '0', schemaId: 7 } });
    const record = produced[0]![0]!;
    expect(record.value!.readUInt32BE(1)).toBe(7);
    expect(JSON.parse(record.value!.subarray(5).toString())).toEqual({ orderId: 'o-1', amount: 5, ssn: '***' });
  });

  it('ERROR: 422 naming rule, subject and version; an all-or-nothing batch writes nothing', async () => {
    produced.length = 0;
    const single = await post({ orderId: 'o-2', amount: -1 });
    expect(single.status).toBe(422);
    expect(single.body).toMatchObject({ error: 'SLUICE_RULE_FAILED', errors: [{ rule: 'positive', subject: 'orders-value', version: 2, reason: "Expr failed: 'message.amount > 0'" }] });
    const batch = await post([
      { orderId: 'o-3', amount: 1 },
      { orderId: 'o-4', amount: -2 },
    ]);
    expect(batch.status).toBe(422);
    expect(batch.body.message).toMatch(/^1 of 2 events broke a rule, so none was produced; first \[1\]: rule 'positive' of orders-value version 2/);
    expect(produced).toEqual([]);
  });

  it('?partial=true answers per index: written, refused by the schema, refused by a rule', async () => {
    produced.length = 0;
    const answer = await post([{ orderId: 'o-5', amount: 1 }, { amount: 1 }, { orderId: 'o-6', amount: 0 }], '?partial=true');
    expect(answer.status).toBe(207);
    expect(answer.body).toMatchObject({
      produced: 1,
      failed: 2,
      results: [
        { index: 0, status: 200 },
        { index: 1, status: 400 },
        { index: 2, status: 422, rule: 'positive' },
      ],
    });
    expect(produced[0]!.map((r) => r.topic)).toEqual(['orders']);
  });

  it('DLQ: the event as sent goes to the rule topic with __rule headers, and the answer says so', async () => {
    produced.length = 0;
    const answer = await post([
      { orderId: 'o-7', amount: 10 },
      { orderId: 'o-8', amount: 5000, ssn: '999' },
    ]);
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([
      { topic: 'orders', partition: 0, offset: '0', schemaId: 7 },
      { topic: 'orders-review', partition: 0, offset: '1', deadLettered: { rule: 'small', subject: 'orders-value', version: 2, reason: "Expr failed: 'message.amount < 1000.0'" } },
    ]);
    const letter = produced[0]![1]!;
    expect(letter.topic).toBe('orders-review');
    expect(JSON.parse(letter.value!.toString())).toEqual({ orderId: 'o-8', amount: 5000, ssn: '999' });
    expect(['__rule.name', '__rule.subject', '__rule.version', '__rule.topic'].map((h) => header(letter, h))).toEqual(['small', 'orders-value', '2', 'orders']);
    expect(letter.key?.toString()).toBe('o-8');
  });

  it('DLQ: a big integer in the dead-lettered event stays an exact number, as in every other Sluice output', async () => {
    produced.length = 0;
    const payload = '{"orderId":"o-9","amount":5000,"sequence":9007199254740993}';
    const response = await app.inject({ method: 'POST', url: '/v1/orders', headers: { 'content-type': 'application/json' }, payload });
    expect(response.statusCode).toBe(200);
    const letter = produced[0]![0]!;
    expect(letter.topic).toBe('orders-review');
    expect(letter.value!.toString()).toBe(payload);
  });

  it('a transform that breaks the schema refuses the event (422), never a 5xx', async () => {
    lookup = { id: 9, version: 4, ruleSet: { domainRules: [{ name: 'to-number', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', expr: "name == 'orderId' ; 1" }] } };
    await contracts.refresh();
    const answer = await post({ orderId: 'o-11', amount: 1 });
    expect(answer).toMatchObject({
      status: 422,
      body: { errors: [{ rule: 'to-number', field: 'orderId', reason: expect.stringMatching(/the transformed event breaks the schema: orderId: expected string/) }] },
    });
  });

  it('a ruleSet removed in the registry stops applying at the next refresh, without a restart', async () => {
    lookup = { id: 8, version: 3 };
    await contracts.refresh();
    produced.length = 0;
    expect(await post({ orderId: 'o-9', amount: -1, ssn: 'x' })).toMatchObject({ status: 200, body: { schemaId: 8 } });
    expect(JSON.parse(produced[0]![0]!.value!.subarray(5).toString())).toEqual({ orderId: 'o-9', amount: -1, ssn: 'x' });
    lookup = { id: 7, version: 2, ...ORDER_RULES };
    await contracts.refresh();
    expect((await post({ orderId: 'o-10', amount: -1 })).status).toBe(422);
  });
});
