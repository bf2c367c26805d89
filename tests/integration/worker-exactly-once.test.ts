import diagnostics from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../core/errors.ts';
import { defineWorker } from '../../consumers/handler.ts';
import { readDeadLetters, replayDeadLetters } from '../../consumers/dead-letters.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { scoreOrder } from '../../consumers/workers/score-orders.ts';
import type { OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored } from '../../schemas/generated/OrderScored.ts';
import { errorTrail } from '../../kafka/index.ts';
import { compileFilter } from '../../reads/filter.ts';
import { randomOrder } from '../support/orders.ts';
import { seam, testLogger } from '../support/platform.ts';
import { deadLettersOf, headerText, offsetsOf, outputsOf, workerHarness, type CollectedRecord, type WorkerHarness } from '../support/workers.ts';

/**
 * Exactly-once workers (Kafka transactions) in-process against the test broker:
 * retries, dead letters and their replay, and a graceful stop under load. The
 * collector reads committed, as any downstream consumer would.
 */

const keyOf = (r: CollectedRecord) => r.key?.toString() ?? '';

function countByKey(records: CollectedRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
  return counts;
}

describe('exactly-once worker: retries, dead letters, replay', () => {
  let h: WorkerHarness;
  const run = Date.now();
  const flaky = `flaky-${run}`;
  const broken = `broken-${run}`;
  const attempts = new Map<string, number>();
  let fixed = false;
  const metrics = createWorkerMetrics();

  const handler = defineWorker<OrderPlaced, OrderScored>((order, context) => {
    attempts.set(order.orderId, (attempts.get(order.orderId) ?? 0) + 1);
    if (order.orderId === flaky && attempts.get(flaky)! <= 2) throw new RetryableError('fraud service timed out');
    if (order.orderId === broken && !fixed) throw new RetryableError('fraud service refuses this order');
    return scoreOrder(order, context.timestamp);
  });

  beforeAll(async () => {
    h = await workerHarness({ configOverrides: { workerBatchSize: '100', workerMaxAttempts: '3', workerRetryBaseMs: '20', workerRetryMaxMs: '100' } });
    await h.start(handler, { delivery: 'exactly-once' }, metrics);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('dead-letters a poison record and flows on; retries a twice-failing record into one output; replays a fixed dead letter once', async () => {
    const orders = Array.from({ length: 400 }, (_, i) => randomOrder(i === 120 ? { orderId: flaky } : i === 260 ? { orderId: broken } : {}));
    const records = orders.map((o) => ({ key: o.orderId, value: h.orders.encode(o) }));
    records.splice(200, 0, { key: `poison-${run}`, value: Buffer.from('not a framed Avro record') });
    await h.send(records);

    const valid = new Set(orders.map((o) => o.orderId).filter((id) => id !== broken));
    const all = await h.collector.waitFor(
      (rs) => outputsOf(h, rs).filter((r) => valid.has(keyOf(r))).length >= valid.size && deadLettersOf(h, rs).length >= 2,
      45_000,
      `${valid.size} outputs and 2 dead letters`,
    );
    const counts = countByKey(outputsOf(h, all));
    expect([...valid].filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect(counts.has(broken)).toBe(false);
    expect(attempts.get(flaky)).toBe(3);

    const dead = deadLettersOf(h, all);
    expect(dead.map(keyOf).sort()).toEqual([broken, `poison-${run}`].sort());
    const poison = dead.find((r) => keyOf(r) === `poison-${run}`)!;
    expect(headerText(poison.headers, 'sluice.error.class')).toBe('DecodeError');
    const exhausted = dead.find((r) => keyOf(r) === broken)!;
    expect(headerText(exhausted.headers, 'sluice.error.code')).toBe('SLUICE_HANDLER_RETRYABLE');
    expect(headerText(exhausted.headers, 'sluice.error.attempts')).toBe('3');
    expect(attempts.get(broken)).toBe(3);

    // The handler is fixed; replay only that dead letter, twice.
    fixed = true;
    const kafka = seam('sluice-test-replay');
    const admin = kafka.admin();
    try {
      const log = testLogger(h.config);
      const where = compileFilter(`key == "${broken}"`);
      const dry = await replayDeadLetters({ kafka, admin, log, topic: h.spec.deadLetter, targets: new Set([h.spec.input]), filter: where, dryRun: true });
      expect(dry.replayed.map((p) => [p.to, p.letter.key?.toString()])).toEqual([[h.spec.input, broken]]);
      const first = await replayDeadLetters({ kafka, admin, log, topic: h.spec.deadLetter, targets: new Set([h.spec.input]), filter: where, dryRun: false });
      const second = await replayDeadLetters({ kafka, admin, log, topic: h.spec.deadLetter, targets: new Set([h.spec.input]), filter: where, dryRun: false });
      expect([first.replayed.length, second.replayed.length, second.alreadyReplayed.length]).toEqual([1, 0, 1]);
      const listed = await readDeadLetters({ kafka, admin, log, topic: h.spec.deadLetter });
      expect(listed.find((l) => l.key?.toString() === broken)?.replayed?.to).toBe(h.spec.input);
    } finally {
      await admin.close();
    }

    const after = await h.collector.waitFor((rs) => outputsOf(h, rs).some((r) => keyOf(r) === broken), 30_000, 'the replayed order');
    const replayed = outputsOf(h, after).filter((r) => keyOf(r) === broken);
    expect(replayed).toHaveLength(1);
    expect(headerText(replayed[0]!.headers, 'sluice-source')).toMatch(new RegExp(`^${h.spec.input}/`));
    // Give a duplicate, if there were one, time to show up.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(outputsOf(h, h.collector.records).filter((r) => keyOf(r) === broken)).toHaveLength(1);
    expect(deadLettersOf(h, h.collector.records)).toHaveLength(2);

    const text = await metrics.registry.metrics();
    expect(text).toMatch(/sluice_worker_dead_letters_total\{worker="score-orders"\} 2/);
    expect(text).toMatch(/sluice_worker_errors_total\{worker="score-orders",class="retryable"\} 5/);
    expect(text).toMatch(/sluice_worker_errors_total\{worker="score-orders",class="fatal"\} 1/);
    expect(text).toMatch(/sluice_worker_handler_seconds_count\{worker="score-orders"\} \d+/);
    expect(text).toMatch(/sluice_worker_consumer_lag\{worker="score-orders",topic="[^"]+",partition="\d"\} 0/);
  });
});

describe('exactly-once worker: graceful stop under load', () => {
  let h: WorkerHarness;

  beforeAll(async () => {
    h = await workerHarness({ configOverrides: { workerBatchSize: '50' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('commits what it finished and loses and repeats nothing across a stop and a restart', async () => {
    const orders = Array.from({ length: 3000 }, () => randomOrder());
    const slow = defineWorker<OrderPlaced, OrderScored>(async (order, context) => {
      if (Math.random() < 0.02) await new Promise((resolve) => setTimeout(resolve, 5));
      return scoreOrder(order, context.timestamp);
    });
    const first = await h.start(slow, { delivery: 'exactly-once' });
    const stream = (async () => {
      for (let i = 0; i < orders.length; i += 100) {
        await h.send(orders.slice(i, i + 100).map((o) => ({ key: o.orderId, value: h.orders.encode(o) })));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await h.collector.waitFor((rs) => outputsOf(h, rs).length >= 600, 30_000, 'a fifth of the outputs');
    await first.stop();
    const stoppedAt = outputsOf(h, h.collector.records).length;
    expect(first.counters.processed).toBeGreaterThanOrEqual(600);
    await stream;
    await h.start(slow, { delivery: 'exactly-once' });

    const wanted = new Set(orders.map((o) => o.orderId));
    const all = await h.collector.waitFor((rs) => outputsOf(h, rs).length >= orders.length, 45_000, 'every output');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const outputs = outputsOf(h, h.collector.records);
    expect(stoppedAt).toBeLessThan(orders.length);
    expect(outputs.length).toBe(orders.length);
    expect(new Set(outputs.map(keyOf))).toEqual(wanted);
    expect(deadLettersOf(h, all)).toHaveLength(0);
  });
});

/** What the client's tracing channel shows of the API calls this process makes (node:diagnostics_channel, no client import). */
const API_RESPONSES = 'tracing:plt:kafka:connections:api:asyncStart';
const END_TXN = 26;
const TXN_OFFSET_COMMIT = 28;
const API_REQUESTS = 'tracing:plt:kafka:connections:api:start';
const PRODUCE = 0;
const ADD_PARTITIONS_TO_TXN = 24;
const ADD_OFFSETS_TO_TXN = 25;

describe('exactly-once worker: one offset commit per transaction', () => {
  let h: WorkerHarness;
  /**
   * Per connection (the worker's transactional producers each have their own, and one transaction open
   * at a time), in order: `end` for each EndTxn answered, the partitions of `input` for each TxnOffsetCommit answered.
   */
  const calls = new Map<unknown, ('end' | number[])[]>();
  /** Per connection, in order: AddOffsetsToTxn and AddPartitionsToTxn sent, AddOffsetsToTxn answered, EndTxn answered. */
  const steps = new Map<unknown, ('offsets sent' | 'partitions sent' | 'offsets answered' | 'end')[]>();
  const listOf = <T>(map: Map<unknown, T[]>, connection: unknown): T[] => map.get(connection) ?? map.set(connection, []).get(connection)!;
  let producesRefused = 0;
  /** EndTxn requests in flight when each EndTxn was sent, and AddOffsetsToTxn sent while another producer's EndTxn was in flight. */
  const endsInFlight = new Set<unknown>();
  const endsInFlightAtEnd: number[] = [];
  let beganBesideEnd = 0;
  const onRequest = (message: unknown) => {
    const { apiKey, connection } = message as { apiKey?: number; connection?: unknown };
    if (apiKey === END_TXN) {
      endsInFlightAtEnd.push(endsInFlight.size);
      endsInFlight.add(connection);
    }
    if (apiKey === ADD_OFFSETS_TO_TXN && [...endsInFlight].some((c) => c !== connection)) beganBesideEnd++;
    if (apiKey === ADD_OFFSETS_TO_TXN) listOf(steps, connection).push('offsets sent');
    if (apiKey === ADD_PARTITIONS_TO_TXN) listOf(steps, connection).push('partitions sent');
  };
  const onResponse = (message: unknown) => {
    const { apiKey, connection, result, error } = message as {
      apiKey?: number;
      connection?: unknown;
      error?: Error;
      result?: { topics?: { name: string; partitions: { partitionIndex: number }[] }[] };
    };
    if (apiKey === END_TXN) endsInFlight.delete(connection);
    if (apiKey === END_TXN) listOf(calls, connection).push('end');
    if (apiKey === END_TXN) listOf(steps, connection).push('end');
    if (apiKey === ADD_OFFSETS_TO_TXN) listOf(steps, connection).push('offsets answered');
    if (apiKey === PRODUCE && error && errorTrail(error).some((line) => line.startsWith('NOT_ENOUGH_REPLICAS'))) producesRefused++;
    if (apiKey !== TXN_OFFSET_COMMIT) return;
    const topics = (result?.topics ?? []).filter((t) => t.name === h.spec.input);
    if (topics.length > 0) listOf(calls, connection).push(topics.flatMap((t) => t.partitions.map((p) => p.partitionIndex)));
  };

  beforeAll(async () => {
    h = await workerHarness({ partitions: 6, configOverrides: { workerBatchSize: '20' } });
    diagnostics.subscribe(API_RESPONSES, onResponse);
    diagnostics.subscribe(API_REQUESTS, onRequest);
  });
  afterAll(async () => {
    diagnostics.unsubscribe(API_RESPONSES, onResponse);
    diagnostics.unsubscribe(API_REQUESTS, onRequest);
    await h?.close();
  });

  it('commits the offsets of every partition of a transaction in one TxnOffsetCommit, and all of them; adds its partitions and offsets in one round trip; begins a transaction while the one before commits, and commits after it', async () => {
    // Waiting on every partition before the worker starts: its transactions take chunks of many partitions.
    const orders = Array.from({ length: 1200 }, () => randomOrder());
    await h.send(orders.map((o) => ({ key: o.orderId, value: h.orders.encode(o) })));
    const worker = await h.start(undefined, { delivery: 'exactly-once' });
    await h.collector.waitFor((rs) => outputsOf(h, rs).length >= orders.length, 45_000, 'every output');
    await worker.stop();

    expect(new Set(outputsOf(h, h.collector.records).map(keyOf)).size).toBe(orders.length);
    const { committed, ends } = await offsetsOf(h.spec.groupId, h.spec.input);
    expect(committed).toEqual(ends);
    // Never two offset commits in one transaction of a producer, and transactions of several partitions happened.
    const commits = [...calls.values()].flat().filter((c) => c !== 'end');
    for (const list of calls.values()) {
      for (let i = 1; i < list.length; i++) if (list[i] !== 'end') expect(list[i - 1]).toBe('end');
      expect(list[0]).not.toBe('end');
    }
    expect(commits.every((partitions) => new Set(partitions).size === partitions.length)).toBe(true);
    expect(Math.max(...commits.map((partitions) => partitions.length))).toBeGreaterThan(1);
    // Fewer offset commits than chunks (1,200 records in chunks of at most 20): many chunks per transaction.
    expect(commits.length).toBeLessThan(1200 / 20);
    // Per transaction: AddPartitionsToTxn goes out before AddOffsetsToTxn is answered (both wait on one connection to the coordinator).
    const transactions: string[][] = [];
    for (const list of steps.values()) {
      transactions.push([]);
      for (const step of list)
        if (step === 'end') transactions.push([]);
        else transactions.at(-1)!.push(step);
    }
    const begun = transactions.filter((t) => t.includes('offsets sent'));
    const pipelined = begun.filter((t) => t.includes('partitions sent') && t.indexOf('partitions sent') < t.indexOf('offsets answered'));
    expect(begun.length).toBeGreaterThan(1);
    // Not every one: a metadata refresh before the records go out comes first.
    expect(pipelined.length).toBeGreaterThan(begun.length / 2);
    // A Produce the leader checks while the coordinator still writes the transaction's state is refused (KIP-890).
    expect(producesRefused).toBe(0);
    // Two producers in turn: a transaction begins while the one before commits, and commits only after it did.
    expect(calls.size).toBeGreaterThanOrEqual(2);
    expect(beganBesideEnd).toBeGreaterThan(0);
    expect(Math.max(...endsInFlightAtEnd)).toBe(0);
  });
});
