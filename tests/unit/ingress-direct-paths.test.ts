import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodec } from '../../core/formats/index.ts';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../core/config.ts';
import errorMapper from '../../core/http-errors.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';
import type { BatchingProducer, RecordAck } from '../../producers/batching-producer.ts';
import { registerBodyParsers } from '../../producers/body-parsers.ts';
import { prepareWithRules } from '../../producers/contract-rules.ts';
import { CLAIM_HEADER } from '../../producers/idempotency-claims.ts';
import { Idempotency } from '../../producers/idempotency.ts';
import { ingressErrors } from '../../producers/ingress-errors.ts';
import { prepareAtomic, registerRoutes, toRecords, type RouteBinding } from '../../producers/routes.ts';
import { runWriteRules, SubjectContracts } from '../../rules/index.ts';
import type { RouteSpec } from '../../topology/model.ts';
import { MemoryClaims } from '../support/memory-claims.ts';

/**
 * The direct path of a produce route (answer text written as the unkeyed fast path writes it) also serves
 * requests with an Idempotency-Key and requests whose WRITE rules kept every event: its answers are byte for
 * byte the general path's, and a keyed retry replays the first answer's text with `idempotent-replayed`.
 */
const SCHEMA = JSON.stringify({ type: 'object', properties: { orderId: { type: 'string' }, amount: { type: 'number' }, ssn: { type: 'string' } }, required: ['orderId'] });
const codec = createCodec({ schemaType: 'JSON', schema: SCHEMA, references: [] });
const plain: RouteBinding = { route: { path: '/v1/plain', topic: 'plain', key: 'orderId' } as RouteSpec, subject: 'plain-value', schemaId: 1, codec, schemaText: SCHEMA };
const ruled: RouteBinding = { route: { path: '/v1/ruled', topic: 'ruled', key: 'orderId' } as RouteSpec, subject: 'ruled-value', schemaId: 2, codec, schemaText: SCHEMA };
const RULES = {
  metadata: { tags: { '**.ssn': ['PII'] } },
  ruleSet: {
    domainRules: [
      { name: 'mask-pii', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" },
      { name: 'positive', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0' },
    ],
  },
};
const registry = {
  request: async (_method: string, path: string) => (path.includes('ruled') ? { id: 7, version: 2, ...RULES } : { id: 1, version: 1 }),
} as unknown as RegistryClient;

/** Every record written, with the acknowledgement it got (offsets count up across all writes). */
const written: { record: OutgoingRecord; ack: RecordAck }[] = [];
const producer = {
  produce: async (records: OutgoingRecord[]) =>
    records.map((record) => {
      const ack = { topic: record.topic, partition: 3, offset: String(written.length) };
      written.push({ record, ack });
      return ack;
    }),
} as unknown as BatchingProducer;

let app: FastifyInstance;
let contracts: SubjectContracts<RouteBinding>;

const post = async (path: string, body: unknown, key?: string) => {
  const response = await app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: JSON.stringify(body),
  });
  return { status: response.statusCode, text: response.body, type: response.headers['content-type'], replayed: response.headers['idempotent-replayed'] };
};

beforeAll(async () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  contracts = new SubjectContracts(registry, [plain, ruled], createLogger(config, 'ingress-direct-paths'));
  await contracts.refresh();
  const claims = new MemoryClaims(written);
  app = Fastify();
  void app.register(errorMapper, ingressErrors({ bodyLimit: 1 << 20, produceTimeoutMs: 1000, rejected: { inc: () => undefined }, routes: [] }));
  registerBodyParsers(app);
  registerRoutes(app, [plain, ruled], { producer, contracts, idempotency: new Idempotency(claims, claims, producer, { owner: 'here', timeoutMs: 5000 }) });
  await app.ready();
});
afterAll(async () => app.close());

describe('the direct path', () => {
  it('a keyed request: the general answer, byte for byte; its retry replays the same text, marked, and writes nothing', async () => {
    for (const [body, batch] of [
      [{ orderId: 'k-1', amount: 1 }, false],
      [
        [
          { orderId: 'k-2', amount: 1 },
          { orderId: 'k-3', amount: 2 },
        ],
        true,
      ],
    ] as const) {
      const events = batch ? [...(body as readonly unknown[])] : [body];
      const key = `key-${String(batch)}`;
      const before = written.length;
      const first = await post('/v1/plain', body, key);
      const acks = written.slice(before).map((w) => w.ack);
      expect(acks).toHaveLength(events.length);
      expect([first.status, first.type, first.replayed]).toEqual([200, 'application/json; charset=utf-8', undefined]);
      expect(first.text).toBe(JSON.stringify(prepareAtomic(plain, events, batch, 'cid').answer(acks).body));
      // Each event carries its claim and its index in the request, which is how a retry finds it.
      expect(
        written.slice(before).map((w) =>
          w.record.headers
            ?.find(([name]) => name === CLAIM_HEADER)?.[1]
            ?.toString()
            .split(':')
            .at(-1),
        ),
      ).toEqual(events.map((_, i) => String(i)));

      const again = await post('/v1/plain', body, `"${key}"`);
      expect([again.status, again.type, again.replayed, again.text]).toEqual([200, 'application/json; charset=utf-8', 'true', first.text]);
      expect(written.length).toBe(before + events.length);
    }
    const reused = await post('/v1/plain', { orderId: 'k-9', amount: 1 }, 'key-false');
    expect(reused.status).toBe(422);
  });

  it('rules that kept every event: transformed records, and the general answer byte for byte, with and without a key', async () => {
    const contract = contracts.of(ruled).contract!;
    for (const key of [undefined, 'ruled-key']) {
      const events = [
        { orderId: 'r-1', amount: 5, ssn: '123-45-6789' },
        { orderId: 'r-2', amount: 6 },
      ];
      const before = written.length;
      const answer = await post('/v1/ruled', events, key);
      const fresh = written.slice(before);
      expect(fresh.map((w) => JSON.parse(w.record.value!.subarray(5).toString()) as unknown)).toEqual([{ orderId: 'r-1', amount: 5, ssn: '***' }, events[1]]);
      expect(fresh.every((w) => w.record.value!.readUInt32BE(1) === 7)).toBe(true);
      const rules = await runWriteRules(contract, events, codec);
      const general = prepareWithRules({ ...ruled, schemaId: 7 }, events, rules, { records: (kept) => toRecords(ruled, kept, 'cid'), headers: [] }, { batch: true, partial: false });
      expect([answer.status, answer.type]).toEqual([200, 'application/json; charset=utf-8']);
      expect(answer.text).toBe(JSON.stringify(general.answer(fresh.map((w) => w.ack)).body));
      if (key !== undefined) {
        const again = await post('/v1/ruled', events, key);
        expect([again.status, again.replayed, again.text]).toEqual([200, 'true', answer.text]);
        expect(written.length).toBe(before + events.length);
      }
    }
  });
});
