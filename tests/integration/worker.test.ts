import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTypes, encodeAvro } from '../../core/formats/avro-types.ts';
import { decodeFramed } from '../../core/serde.ts';
import { frame } from '../../core/wire-format.ts';
import type { RunningWorker } from '../../consumers/start-worker.ts';
import { scoreOrder } from '../../consumers/workers/score-orders.ts';
import type { OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored } from '../../schemas/generated/OrderScored.ts';
import { randomOrder } from '../support/orders.ts';
import { deadLettersOf, headerText, offsetsOf, outputsOf, toOutgoing, workerHarness, type CollectedRecord, type WorkerHarness } from '../support/workers.ts';

/**
 * The score-orders worker against the test broker and a real Sluice registry:
 * one worker for the whole file, each test with records of its own.
 */

const RECORD_TIME = 1_767_225_600_000;

let h: WorkerHarness;
let worker: RunningWorker;
let sent = 0;

beforeAll(async () => {
  h = await workerHarness();
  worker = await h.start();
});

afterAll(async () => {
  await h?.close();
});

async function decodeOutput(record: CollectedRecord): Promise<OrderScored> {
  return (await decodeFramed(h.registry, record.value)).value as OrderScored;
}

function withDefaults(order: ReturnType<typeof randomOrder>): OrderPlaced {
  return { channel: 'WEB', couponCode: null, shippingCountry: null, loyaltyPoints: 0, ...order } as OrderPlaced;
}

describe('score-orders worker', () => {
  it('turns 200 orders into 200 OrderScored events with the input keys, correlation ids and provenance', async () => {
    const orders = Array.from({ length: 200 }, () => randomOrder());
    const byId = new Map(orders.map((o, i) => [o.orderId, { order: o, correlationId: `corr-${i}` }]));
    await h.send(orders.map((o, i) => ({ key: o.orderId, value: h.orders.encode(o), headers: { 'correlation-id': `corr-${i}` }, timestamp: String(RECORD_TIME) })));
    sent += orders.length;

    const mine = (records: CollectedRecord[]) => outputsOf(h, records).filter((r) => byId.has(r.key?.toString() ?? ''));
    const records = mine(await h.collector.waitFor((all) => mine(all).length >= 200, 30_000, '200 outputs'));
    expect(records).toHaveLength(200);

    const sources = new Set<string>();
    for (const record of records) {
      const scored = await decodeOutput(record);
      const key = record.key!.toString();
      const expected = byId.get(scored.orderId);
      expect(key).toBe(scored.orderId);
      expect(expected).toBeDefined();
      // The output is exactly what the pure scoring function gives for the decoded input at the record's time.
      expect(scored).toEqual(scoreOrder(withDefaults(expected!.order), RECORD_TIME));
      expect(headerText(record.headers, 'correlation-id')).toBe(expected!.correlationId);
      const source = headerText(record.headers, 'sluice-source');
      expect(source).toMatch(new RegExp(`^${h.spec.input.replaceAll('.', '\\.')}/[0-2]/\\d+$`));
      sources.add(source!);
    }
    expect(sources.size).toBe(200);
  });

  it('dead-letters undecodable records with the original bytes and reason headers, and processes every record after them', async () => {
    const key = `poison-${Date.now()}`;
    const before = Array.from({ length: 5 }, () => randomOrder());
    const after = Array.from({ length: 10 }, () => randomOrder());
    const garbage = Buffer.concat([Buffer.from([0x7f]), randomBytes(40)]);
    const unknownId = frame(987_654, encodeAvro(h.orders.types, randomOrder()));
    // A schema the reader cannot resolve: orderId is a number on the writer's side.
    const incompatible = createTypes({ type: 'record', name: 'OrderPlaced', namespace: 'dev.sluice.orders', fields: [{ name: 'orderId', type: 'long' }] });
    const incompatibleId = await h.registry.register(`${h.spec.input}-incompatible-value`, JSON.stringify(incompatible.schema));
    const unresolvable = frame(incompatibleId, encodeAvro(incompatible, { orderId: 7 }));
    const good = (o: ReturnType<typeof randomOrder>) => ({ key, value: h.orders.encode(o), headers: { 'correlation-id': o.orderId } });
    const poison = (value: Buffer, name: string) => ({ key, value, headers: { 'correlation-id': name, 'x-trace': `trace-${name}` } });

    // One key: every record lands in one partition, so "after" really is after the poison.
    const metadata = await h.producer.send(
      [...before.map(good), poison(garbage, 'garbage'), ...after.slice(0, 5).map(good), poison(unknownId, 'unknown-id'), poison(unresolvable, 'unresolvable'), ...after.slice(5).map(good)].map((r) =>
        toOutgoing(h.spec.input, r),
      ),
    );
    sent += 18;
    const { partition, offset: base } = metadata[0]!;

    const wanted = new Set([...before, ...after].map((o) => o.orderId));
    const done = (all: CollectedRecord[]) =>
      outputsOf(h, all).filter((r) => wanted.has(headerText(r.headers, 'correlation-id') ?? '')).length >= wanted.size && deadLettersOf(h, all).filter((r) => r.key?.toString() === key).length >= 3;
    const all = await h.collector.waitFor(done, 30_000, '15 outputs and 3 dead letters');

    const emittedIds = new Set(outputsOf(h, all).map((r) => headerText(r.headers, 'correlation-id')));
    for (const id of wanted) expect(emittedIds.has(id)).toBe(true);

    const dead = deadLettersOf(h, all).filter((r) => r.key?.toString() === key);
    expect(dead).toHaveLength(3);
    const byName = new Map(dead.map((r) => [headerText(r.headers, 'correlation-id'), r]));
    const expectations = [
      { name: 'garbage', value: garbage, offset: base + 5n, message: /magic byte/ },
      { name: 'unknown-id', value: unknownId, offset: base + 11n, message: /schema id 987654/ },
      { name: 'unresolvable', value: unresolvable, offset: base + 12n, message: /cannot be read with the reader schema/ },
    ];
    for (const e of expectations) {
      const message = byName.get(e.name);
      expect(message, e.name).toBeDefined();
      expect(message!.key?.toString()).toBe(key);
      expect(Buffer.compare(message!.value!, e.value)).toBe(0);
      const header = (name: string) => headerText(message!.headers, name);
      expect(header('sluice.error.class')).toBe('DecodeError');
      expect(header('sluice.error.code')).toBe('SLUICE_DECODE_FAILED');
      expect(header('sluice.error.message')).toMatch(e.message);
      expect(header('sluice.original.topic')).toBe(h.spec.input);
      expect(header('sluice.original.partition')).toBe(String(partition));
      expect(header('sluice.original.offset')).toBe(e.offset.toString());
      expect(Number(header('sluice.original.timestamp'))).toBeGreaterThan(0);
      expect(Date.now() - Date.parse(header('sluice.failed.at') ?? '')).toBeLessThan(60_000);
      expect(header('x-trace')).toBe(`trace-${e.name}`);
    }
  });

  it('reads records written with an older writer schema, filling the reader defaults', async () => {
    // OrderPlaced as an early producer wrote it: no channel, coupon, country or points, and a float amount.
    const legacy = createTypes({
      type: 'record',
      name: 'OrderPlaced',
      namespace: 'dev.sluice.orders',
      fields: [
        { name: 'orderId', type: 'string' },
        { name: 'customerId', type: 'string' },
        {
          name: 'items',
          type: {
            type: 'array',
            items: {
              type: 'record',
              name: 'LineItem',
              fields: [
                { name: 'sku', type: 'string' },
                { name: 'quantity', type: 'int' },
                { name: 'unitPrice', type: 'double' },
              ],
            },
          },
        },
        { name: 'amount', type: 'float' },
        { name: 'currency', type: { type: 'enum', name: 'Currency', symbols: ['EUR', 'USD'] } },
        { name: 'placedAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
      ],
    });
    const legacyId = await h.registry.register(`${h.spec.input}-legacy-value`, JSON.stringify(legacy.schema));
    expect(legacyId).not.toBe(h.orders.schemaId);
    const order = { orderId: `legacy-${Date.now()}`, customerId: 'c-9', items: [{ sku: 'A', quantity: 5, unitPrice: 2.5 }], amount: 12.5, currency: 'USD', placedAt: RECORD_TIME - 1 };
    await h.send([{ key: order.orderId, value: frame(legacyId, encodeAvro(legacy, order)), timestamp: String(RECORD_TIME) }]);
    sent += 1;

    const done = (all: CollectedRecord[]) => outputsOf(h, all).some((r) => r.key?.toString() === order.orderId);
    const record = outputsOf(h, await h.collector.waitFor(done, 20_000, 'the legacy order')).find((r) => r.key?.toString() === order.orderId);
    const scored = await decodeOutput(record!);
    // The handler saw the reader's defaults (WEB, no coupon, no country, no points) and the float promoted to double.
    const asRead: OrderPlaced = { ...order, currency: 'USD', channel: 'WEB', couponCode: null, shippingCountry: null, loyaltyPoints: 0 };
    expect(scored).toEqual(scoreOrder(asRead, RECORD_TIME));
    expect(scored.reasons).toContain('shipping-country-missing');
    expect(scored.amount).toBe(12.5);
  });

  it('commits every input offset once stopped, and counts what it did', async () => {
    await worker.stop();
    const { committed, ends } = await offsetsOf(h.spec.groupId, h.spec.input);
    expect(ends.size).toBe(3);
    for (const [partition, end] of ends) expect(committed.get(partition)).toBe(end);
    expect(worker.counters).toEqual({ processed: sent, emitted: sent - 3, deadLettered: 3, retries: 0 });
  });
});
