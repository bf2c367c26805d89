import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../broker/cluster.ts';
import { faultsCluster, startDownNodes, waitForFullIsr } from './cluster.ts';
import { percentile, postOrders, summarize } from './load.ts';
import { report } from './report.ts';
import { keyCounts, scoredCounts, startPlatform, type Platform } from './platform.ts';

/** Continuous load during the roll: a steady rate, well under capacity, so latency shows the roll and not the queue. */
const RATE = 150;
const CONCURRENCY = 16;

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

  it('restarts each broker in turn, each back in the ISR before the next: 0 lost, 0 duplicated', { timeout: 600_000 }, async () => {
    const { placed, scored } = platform.topics;
    let rolling = true;
    const run = postOrders(`${platform.ingressUrl}/v1/orders`, { count: 1_000_000, concurrency: CONCURRENCY, ratePerSecond: RATE, stop: () => !rolling });
    const began = Date.now();
    for (const node of cluster.nodes) {
      // A clean stop (SIGTERM): the broker hands its leaderships over before it exits, as in an upgrade.
      await node.stop();
      await node.start();
      await waitForFullIsr(cluster, [placed, scored]);
    }
    const rollMs = Date.now() - began;
    rolling = false;
    const outcomes = await run.done;

    const { accepted, refused, byStatus } = summarize(outcomes);
    expect(
      Object.keys(byStatus)
        .map(Number)
        .every((s) => s === 200 || s === 503),
      JSON.stringify(byStatus),
    ).toBe(true);
    const { counts, lost, duplicated } = await scoredCounts(scored, accepted, 120_000);
    // Whether a duplicate comes from the worker (once on the input, twice scored) or from the ingress (posted once, written twice).
    const placedCounts = await keyCounts(placed);
    const duplicatedOnInput = [...placedCounts.values()].filter((n) => n > 1).length;
    const duplicatedByWorker = [...counts].filter(([id, n]) => n > 1 && placedCounts.get(id) === 1).length;
    const latencies = accepted.map((o) => o.ms);
    const figures = {
      posted: outcomes.length,
      accepted: accepted.length,
      failed: refused.length,
      byStatus,
      lost,
      duplicated,
      duplicatedOnInput,
      duplicatedByWorker,
      rollMs,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
    };
    report('rolling-restart', figures);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    // A clean roll moves leaders before each broker stops, but a produce batch caught by a move can spend its
    // budget on NOT_LEADER_OR_FOLLOWER (5-22 of ~8,000 seen): those are 503s (checked above) the client retries,
    // never lost. More than 1% would be a regression.
    expect(refused.length, JSON.stringify(figures)).toBeLessThanOrEqual(Math.ceil(outcomes.length / 100));
  });
});
