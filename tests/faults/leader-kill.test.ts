import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../broker/cluster.ts';
import { faultsCluster, pickVictim, replicationOf, startDownNodes, waitForFullIsr, waitForLeadersOff } from './cluster.ts';
import { postOrders, summarize } from './load.ts';
import { report } from './report.ts';
import { scoredCounts, startPlatform, type Platform } from './platform.ts';

/** Events posted per run (the 20,000 take several minutes on a 2-core box; SLUICE_FAULTS_EVENTS to change). */
const EVENTS = Number(process.env.SLUICE_FAULTS_EVENTS ?? '3000');
/** Requests in flight at once: each can fail at most once per produce timeout while partitions have no leader. */
const CONCURRENCY = 32;
/** The ingress's default produce timeout (SLUICE_PRODUCE_TIMEOUT_MS). */
const PRODUCE_TIMEOUT_MS = 10_000;

describe('[faults] the leader of most partitions of orders.placed is SIGKILLed under load', () => {
  let cluster: LocalCluster;
  let platform: Platform;

  beforeAll(async () => {
    cluster = await faultsCluster();
    platform = await startPlatform();
  });

  afterAll(async () => {
    await platform?.stop();
    // Leave the cluster whole for the next file.
    await startDownNodes(cluster);
  });

  it('creates the topology topics with RF 3 and min.insync.replicas 2 (auto on three brokers)', async () => {
    const { placed, scored } = platform.topics;
    for (const topic of [placed, scored]) {
      const { replicas, isr } = await replicationOf(cluster, topic);
      expect(replicas).toEqual([3, 3, 3, 3, 3, 3]);
      expect(isr).toEqual([3, 3, 3, 3, 3, 3]);
    }
  });

  it(`every accepted event of ${EVENTS} is scored exactly once; failures are 503s within the in-flight bound; the broker rejoins the ISR`, { timeout: 300_000 }, async () => {
    const { placed, scored } = platform.topics;
    const victim = await pickVictim(cluster, placed, { transactionalId: platform.transactionalId(), groupId: platform.groupId });
    const began = Date.now();
    const run = postOrders(`${platform.ingressUrl}/v1/orders`, { count: EVENTS, concurrency: CONCURRENCY, timeoutMs: 30_000 });
    while (run.issued() < EVENTS / 4) await sleep(20);
    await victim.kill('SIGKILL');
    const killedAtMs = run.elapsedMs();
    // Until the controller fences the dead broker and moves its leaderships, its partitions take no writes.
    await waitForLeadersOff(cluster, placed, victim.id);
    const failoverMs = run.elapsedMs() - killedAtMs;
    const outcomes = await run.done;

    const postMs = Date.now() - began;
    const { accepted, refused, byStatus } = summarize(outcomes);
    expect(outcomes).toHaveLength(EVENTS);
    // Every request was answered, and a refusal is a 503 with Retry-After after the producer's own retries.
    expect(
      Object.keys(byStatus)
        .map(Number)
        .every((s) => s === 200 || s === 503),
      JSON.stringify(byStatus),
    ).toBe(true);
    expect(refused.every((o) => o.retryAfter !== null && Number(o.retryAfter) >= 1)).toBe(true);
    // The in-flight bound: only requests in flight while partitions had no leader fail, each lane once per produce timeout.
    const bound = CONCURRENCY * (1 + Math.ceil(failoverMs / PRODUCE_TIMEOUT_MS));
    const lateFailures = refused.filter((o) => o.startedMs > killedAtMs + failoverMs + 1000).length;

    const { counts, lost: missing, duplicated } = await scoredCounts(scored, accepted, 120_000);
    const scoredOnce = accepted.filter((o) => counts.get(o.orderId) === 1).length;
    report('leader-kill', {
      failoverMs: Math.round(failoverMs),
      bound,
      lateFailures,
      postMs,
      scoredMs: Date.now() - began,
      posted: EVENTS,
      accepted: accepted.length,
      failed: refused.length,
      byStatus,
      scoredOnce,
      missing,
      duplicated,
      victim: victim.id,
    });
    expect({ missing, duplicated }, platform.output().slice(-6000)).toEqual({ missing: 0, duplicated: 0 });
    expect(refused.length).toBeLessThanOrEqual(bound);
    expect(lateFailures).toBe(0);
    // A refused event may still have been written (its ack came after the deadline), but never twice.
    expect(counts.size).toBeLessThanOrEqual(EVENTS);

    await victim.start();
    await cluster.waitForIsr(placed, victim.id, 90_000);
    await cluster.waitForIsr(scored, victim.id, 90_000);
    await waitForFullIsr(cluster, [placed, scored]);
  });
});
