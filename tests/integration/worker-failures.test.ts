import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../core/errors.ts';
import { encodeAvro } from '../../core/formats/avro-types.ts';
import { decodeFramed } from '../../core/serde.ts';
import { frame } from '../../core/wire-format.ts';
import { defineWorker, emit } from '../../consumers/handler.ts';
import { partitionForKey } from '../../kafka/index.ts';
import type { RunningWorker } from '../../consumers/start-worker.ts';
import { scoreOrder } from '../../consumers/workers/score-orders.ts';
import type { OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored } from '../../schemas/generated/OrderScored.ts';
import { randomOrder } from '../support/orders.ts';
import { deadLettersOf, headerText, offsetsOf, outputsOf, workerHarness, type CollectedRecord, type WorkerHarness } from '../support/workers.ts';

/** Handler failures, retries and stopping mid-stream, against the test broker and a real registry. */

const keyOf = (r: CollectedRecord) => r.key?.toString() ?? '';

describe('handler failures', () => {
  let h: WorkerHarness;
  let worker: RunningWorker;
  const throwFor = `boom-${Date.now()}`;
  const invalidFor = `invalid-${Date.now()}`;
  const flakyFor = `flaky-${Date.now()}`;
  const multiFor = `multi-${Date.now()}`;
  const hugeFor = `huge-${Date.now()}`;
  const attempts = new Map<string, number>();

  const handler = defineWorker<OrderPlaced, OrderScored>((order, context) => {
    attempts.set(order.orderId, (attempts.get(order.orderId) ?? 0) + 1);
    if (order.orderId === throwFor) throw new TypeError(`cannot score ${order.orderId}`);
    if (order.orderId === flakyFor && attempts.get(order.orderId) === 1) throw new RetryableError('fraud service timed out');
    const scored = scoreOrder(order, context.timestamp);
    // A score out of the schema's type: the output fails validation, not the handler.
    if (order.orderId === invalidFor) return { ...scored, score: 'high' as unknown as number };
    // Over the broker's 1 MB message.max.bytes: producing it could never succeed.
    if (order.orderId === hugeFor) return { ...scored, reasons: ['x'.repeat(1_100_000)] };
    if (order.orderId === multiFor) return [scored, emit({ ...scored, reasons: ['copy'] }, { key: `${order.orderId}-copy`, headers: { 'x-copy': 'yes' } })];
    return scored;
  });

  beforeAll(async () => {
    h = await workerHarness();
    worker = await h.start(handler);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('dead-letters the one order whose handler throws, with its error class and message, and emits the others', async () => {
    const orders = Array.from({ length: 30 }, (_, i) => randomOrder(i === 12 ? { orderId: throwFor } : {}));
    await h.send(orders.map((o) => ({ key: o.orderId, value: h.orders.encode(o), headers: { 'correlation-id': `c-${o.orderId}` } })));
    const ids = new Set(orders.map((o) => o.orderId));
    const all = await h.collector.waitFor(
      (rs) => outputsOf(h, rs).filter((r) => ids.has(keyOf(r))).length >= 29 && deadLettersOf(h, rs).some((r) => keyOf(r) === throwFor),
      30_000,
      '29 outputs and the dead letter',
    );
    const outputs = outputsOf(h, all).filter((r) => ids.has(keyOf(r)));
    expect(new Set(outputs.map(keyOf))).toEqual(new Set([...ids].filter((id) => id !== throwFor)));
    const dead = deadLettersOf(h, all).filter((r) => keyOf(r) === throwFor);
    expect(dead).toHaveLength(1);
    const headers = dead[0]!.headers;
    expect(headerText(headers, 'sluice.error.class')).toBe('TypeError');
    expect(headerText(headers, 'sluice.error.message')).toBe(`cannot score ${throwFor}`);
    expect(headers).not.toHaveProperty('sluice.error.code');
    expect(headerText(headers, 'correlation-id')).toBe(`c-${throwFor}`);
    expect(Buffer.compare(dead[0]!.value!, h.orders.encode(orders[12]!))).toBe(0);
  });

  it('dead-letters an input whose output breaks the output schema', async () => {
    const order = randomOrder({ orderId: invalidFor });
    await h.send([{ key: order.orderId, value: h.orders.encode(order) }]);
    const all = await h.collector.waitFor((rs) => deadLettersOf(h, rs).some((r) => keyOf(r) === invalidFor), 20_000, 'the invalid output');
    const dead = deadLettersOf(h, all).find((r) => keyOf(r) === invalidFor)!;
    expect(headerText(dead.headers, 'sluice.error.class')).toBe('ValidationError');
    expect(headerText(dead.headers, 'sluice.error.code')).toBe('SLUICE_VALIDATION_FAILED');
    expect(headerText(dead.headers, 'sluice.error.message')).toMatch(/^score: expected double/);
    expect(outputsOf(h, all).some((r) => keyOf(r) === invalidFor)).toBe(false);
  });

  it('dead-letters an input whose output is too large to produce, and flows on', async () => {
    const huge = randomOrder({ orderId: hugeFor });
    const after = randomOrder();
    await h.send([huge, after].map((o) => ({ key: o.orderId, value: h.orders.encode(o) })));
    const all = await h.collector.waitFor(
      (rs) => deadLettersOf(h, rs).some((r) => keyOf(r) === hugeFor) && outputsOf(h, rs).some((r) => keyOf(r) === after.orderId),
      30_000,
      'the dead letter and the next output',
    );
    const dead = deadLettersOf(h, all).find((r) => keyOf(r) === hugeFor)!;
    expect(headerText(dead.headers, 'sluice.error.code')).toBe('SLUICE_OUTPUT_TOO_LARGE');
    expect(headerText(dead.headers, 'sluice.error.message')).toMatch(/SLUICE_WORKER_BATCH_BYTES/);
    expect(outputsOf(h, all).some((r) => keyOf(r) === hugeFor)).toBe(false);
    // Outputs land where Kafka's default partitioner puts their key.
    for (const r of outputsOf(h, all)) expect(r.partition).toBe(partitionForKey(r.key!, 3));
  });

  it('retries a retryable handler failure instead of dead-lettering it', async () => {
    const order = randomOrder({ orderId: flakyFor });
    await h.send([{ key: order.orderId, value: h.orders.encode(order) }]);
    const all = await h.collector.waitFor((rs) => outputsOf(h, rs).some((r) => keyOf(r) === flakyFor), 30_000, 'the retried order');
    expect(attempts.get(flakyFor)).toBeGreaterThanOrEqual(2);
    expect(deadLettersOf(h, all).some((r) => keyOf(r) === flakyFor)).toBe(false);
    expect(worker.counters.retries).toBeGreaterThanOrEqual(1);
  });

  it('does not dead-letter a record while the registry is down: it waits and processes it once the registry is back', async () => {
    // A writer schema the worker has not seen, so decoding needs the registry.
    const variant = { ...JSON.parse(h.topology.topics[0]!.valueSchema!.text), doc: 'a second writer version' };
    const variantId = await h.registry.register(`${h.spec.input}-variant-value`, JSON.stringify(variant));
    expect(variantId).not.toBe(h.orders.schemaId);
    const order = randomOrder();
    const retriesBefore = worker.counters.retries;
    await h.stopRegistry();
    try {
      await h.send([{ key: order.orderId, value: frame(variantId, encodeAvro(h.orders.types, order)) }]);
      await h.collector.waitFor(() => worker.counters.retries > retriesBefore, 15_000, 'a retry while the registry is down');
      expect(h.collector.records.some((r) => keyOf(r) === order.orderId)).toBe(false);
    } finally {
      await h.restartRegistry();
    }
    const all = await h.collector.waitFor((rs) => outputsOf(h, rs).some((r) => keyOf(r) === order.orderId), 30_000, 'the order after the outage');
    expect(deadLettersOf(h, all).some((r) => keyOf(r) === order.orderId)).toBe(false);
    expect(outputsOf(h, all).filter((r) => keyOf(r) === order.orderId)).toHaveLength(1);
  });

  it('emits every output of a handler that returns several, with their own keys and headers', async () => {
    const order = randomOrder({ orderId: multiFor });
    await h.send([{ key: order.orderId, value: h.orders.encode(order), headers: { 'correlation-id': 'multi' } }]);
    const all = await h.collector.waitFor((rs) => outputsOf(h, rs).filter((r) => keyOf(r).startsWith(multiFor)).length >= 2, 20_000, 'two outputs');
    const mine = outputsOf(h, all).filter((r) => keyOf(r).startsWith(multiFor));
    // Different keys land on different partitions, so the collector's order says nothing; match by key.
    expect(mine.map(keyOf).sort()).toEqual([multiFor, `${multiFor}-copy`]);
    const first = mine.find((r) => keyOf(r) === multiFor);
    const second = mine.find((r) => keyOf(r) === `${multiFor}-copy`);
    expect(headerText(first!.headers, 'x-copy')).toBeUndefined();
    expect(headerText(second!.headers, 'x-copy')).toBe('yes');
    // The runtime's headers are added to the handler's own.
    expect(headerText(second!.headers, 'correlation-id')).toBe('multi');
    expect(((await decodeFramed(h.registry, second!.value)).value as OrderScored).reasons).toEqual(['copy']);
  });
});

describe('stopping mid-stream', () => {
  let h: WorkerHarness;

  beforeAll(async () => {
    // Small chunks so a stop lands between commits, with records still to come.
    h = await workerHarness({ configOverrides: { workerBatchSize: '20' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('loses nothing: after a stop and a restart in the same group, every input has an output', async () => {
    const orders = Array.from({ length: 1500 }, () => randomOrder());
    // Slow enough (2 ms a record) that a chunk is always in flight when stop() is called.
    const slow = defineWorker<OrderPlaced, OrderScored>(async (order, context) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return scoreOrder(order, context.timestamp);
    });
    const first = await h.start(slow);
    const stream = (async () => {
      for (let i = 0; i < orders.length; i += 50) {
        await h.send(orders.slice(i, i + 50).map((o) => ({ key: o.orderId, value: h.orders.encode(o) })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const wanted = new Set(orders.map((o) => o.orderId));
    await h.collector.waitFor((rs) => outputsOf(h, rs).length >= 200, 20_000, 'the first 200 outputs');
    const stoppedAt = Date.now();
    await first.stop();
    const stopMs = Date.now() - stoppedAt;
    const processedByFirst = first.counters.processed;
    await stream;
    expect(processedByFirst).toBeGreaterThan(0);
    expect(processedByFirst).toBeLessThan(orders.length);
    expect(stopMs).toBeLessThan(h.config.shutdownTimeoutMs);
    // Everything the first worker counted as processed (its chunk in flight included) is committed, and nothing more.
    const committedByFirst = (await offsetsOf(h.spec.groupId, h.spec.input)).committed;
    expect([...committedByFirst.values()].reduce((sum, offset) => sum + Math.max(0, Number(offset)), 0)).toBe(processedByFirst);

    // The real score-orders module, loaded from the spec's handler path.
    const second = await h.start();
    const all = await h.collector.waitFor(
      (rs) =>
        new Set(
          outputsOf(h, rs)
            .map(keyOf)
            .filter((k) => wanted.has(k)),
        ).size >= wanted.size,
      30_000,
      'an output for every input',
    );
    const outputs = outputsOf(h, all);
    expect(new Set(outputs.map(keyOf))).toEqual(wanted);
    expect(deadLettersOf(h, all)).toHaveLength(0);
    // A graceful stop commits everything it produced, so the restart redoes nothing: no duplicates either.
    expect(outputs).toHaveLength(orders.length);

    // At least once, outputs are visible before their offsets commit: the counts add up once the second worker stopped.
    await second.stop();
    expect(first.counters.processed + second.counters.processed).toBe(orders.length);
    const { committed, ends } = await offsetsOf(h.spec.groupId, h.spec.input);
    for (const [partition, end] of ends) expect(committed.get(partition)).toBe(end);
  });
});
