import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../broker/cluster.ts';
import { createKafka, type KafkaAdmin } from '../../kafka/index.ts';
import { faultsCluster, faultsConfig, startDownNodes, waitForFullIsr } from './cluster.ts';
import { account, ledgerFigures } from './ledger.ts';
import { percentile, postOrders, summarize, type Outcome } from './load.ts';
import { report } from './report.ts';
import { keyCounts, startPlatform, waitForKeys, type Platform } from './platform.ts';

/** Continuous load during the roll: a steady rate, well under capacity, so latency shows the roll and not the queue. */
const RATE = 150;
const CONCURRENCY = 16;
/** Rolls of the whole cluster in one run (each about 3 minutes on a 2-core box): SLUICE_FAULTS_ROLLS, default 1. */
const ROLLS = Number(process.env.SLUICE_FAULTS_ROLLS ?? '1');
/** How long the worker may take, after a node is back in the ISR, to commit past where the input ended then. */
const CATCH_UP_MS = 120_000;

/**
 * The worker's lag back to zero after a node: its group commits past every offset the input held when the node
 * came back (the load goes on, so the lag of the moment is never 0; what was there then must all be consumed).
 * Returns how long that took.
 */
async function caughtUp(admin: KafkaAdmin, groupId: string, topic: string): Promise<number> {
  const started = Date.now();
  const ends = await admin.listOffsets(topic, 'latest');
  for (;;) {
    const committed = new Map((await admin.committedOffsets(groupId, [topic])).map((p) => [p.partition, p.offset]));
    if ([...ends].every(([partition, end]) => (committed.get(partition) ?? -1n) >= end)) return Date.now() - started;
    if (Date.now() - started > CATCH_UP_MS)
      throw new Error(
        `the worker's group ${groupId} did not commit past ${JSON.stringify(Object.fromEntries([...ends].map(([p, o]) => [p, String(o)])))} within ${CATCH_UP_MS} ms (committed ${JSON.stringify(Object.fromEntries([...committed].map(([p, o]) => [p, String(o)])))})`,
      );
    await sleep(500);
  }
}

describe('[faults] rolling restart of all three brokers under continuous load', () => {
  let cluster: LocalCluster;
  let platform: Platform;

  beforeAll(async () => {
    cluster = await faultsCluster();
    await startDownNodes(cluster);
    platform = await startPlatform();
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it(`restarts each broker in turn (SIGTERM), each back in the ISR before the next, ${ROLLS} time(s): nothing refused, lost or duplicated`, { timeout: 60_000 + ROLLS * 540_000 }, async () => {
    const { placed, scored } = platform.topics;
    const rolls: { outcomes: Outcome[]; rollMs: number; catchUpMs: number[] }[] = [];
    const admin = createKafka(faultsConfig(), pino({ level: 'silent' }), 'faults').admin({ name: 'faults-lag' });
    for (let roll = 0; roll < ROLLS; roll++) {
      let rolling = true;
      const run = postOrders(`${platform.ingressUrl}/v1/orders`, { count: 1_000_000, concurrency: CONCURRENCY, ratePerSecond: RATE, stop: () => !rolling });
      const began = Date.now();
      const catchUpMs: number[] = [];
      for (const node of cluster.nodes) {
        // A clean stop (SIGTERM): the broker hands its leaderships over before it exits, as in an upgrade.
        await node.stop();
        await node.start();
        await waitForFullIsr(cluster, [placed, scored]);
        catchUpMs.push(await caughtUp(admin, platform.groupId, placed));
      }
      rolling = false;
      rolls.push({ outcomes: await run.done, rollMs: Date.now() - began, catchUpMs });
    }
    await admin.close();

    const all = rolls.flatMap((r) => r.outcomes);
    const { byStatus, refused } = summarize(all);
    const output = await waitForKeys(
      scored,
      summarize(all).accepted.map((o) => o.orderId),
      180_000,
    );
    const input = await keyCounts(placed);
    const ledgers = rolls.map(({ outcomes, rollMs, catchUpMs }, i) => {
      const ledger = account(outcomes, input, output);
      const latencies = summarize(outcomes).accepted.map((o) => o.ms);
      const figures = {
        roll: i + 1,
        of: ROLLS,
        rollMs,
        workerCatchUpMsPerNode: catchUpMs,
        ...ledgerFigures(ledger),
        byStatus: summarize(outcomes).byStatus,
        p50Ms: Math.round(percentile(latencies, 50)),
        p99Ms: Math.round(percentile(latencies, 99)),
        maxMs: Math.round(percentile(latencies, 100)),
      };
      report('rolling-restart', figures);
      return { ledger, figures };
    });

    // Whatever went wrong, it is a 503 with Retry-After, never another status or a dropped connection.
    expect(
      Object.keys(byStatus)
        .map(Number)
        .every((s) => s === 200 || s === 503),
      JSON.stringify(byStatus),
    ).toBe(true);
    expect(refused.every((o) => o.retryAfter !== null && Number(o.retryAfter) >= 1)).toBe(true);
    for (const { ledger, figures } of ledgers) {
      const text = JSON.stringify(figures);
      expect({ lost: ledger.lost, ingress: ledger.duplicatedOnInput, worker: ledger.duplicatedByWorker }, text).toEqual({ lost: 0, ingress: [], worker: [] });
      // Leaderships move before each broker stops, and a produce caught by a move is retried on the new leader
      // (kafka/produce-routing.ts): a clean roll refuses nothing.
      expect(ledger.refused, `${text}\n${platform.output().slice(-4000)}`).toBe(0);
    }
  });
});
