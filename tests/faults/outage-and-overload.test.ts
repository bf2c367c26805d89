import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../broker/cluster.ts';
import { readTopics } from '../support/platform.ts';
import { faultsCluster, startDownNodes, waitForFullIsr } from './cluster.ts';
import { account, ledgerFigures } from './ledger.ts';
import { durationBetween, openLoopPipelined, ordersDurationBuckets, percentile, postOrders, rejectedByCode, summarize } from './load.ts';
import { report } from './report.ts';
import { keyCounts, scoredCounts, startPlatform, type Platform } from './platform.ts';

/** The ingress's produce timeout in these tests: 503 must come within it (plus HTTP and scheduling slack). */
const PRODUCE_TIMEOUT_MS = 5000;
/**
 * Queue bound of the ingress under test. Admission (producers/admission.ts) refuses by the queue's expected wait, long
 * before it fills: this only bounds what an estimate that is still too high could admit.
 */
const MAX_QUEUED = 5000;
const OUTAGE_MS = Number(process.env.SLUICE_FAULTS_OUTAGE_MS ?? '30000');
/** The open-loop overload (twice the capacity), and the phase after it at half the capacity. */
const SOAK_MS = Number(process.env.SLUICE_FAULTS_SOAK_MS ?? '60000');
const RECOVERY_MS = Math.max(10_000, Number(process.env.SLUICE_FAULTS_RECOVERY_MS ?? '30000'));
/**
 * The pipelined client's connections and unanswered requests per connection (the ingress's SLUICE_HTTP_MAX_PIPELINED
 * default); arrivals beyond connections × that are counted as shed by the client, not sent.
 */
const CONNECTIONS = 100;
const PER_CONNECTION = 32;
/** The capacity probe before the soak: its offered rate (above any capacity seen here), how long, and the last part it counts. */
const PROBE_RATE = 2000;
const PROBE_MS = 12_000;
const PROBE_COUNTED_MS = 6000;
/**
 * The RSS the `sluice up` process (ingress, registry and exactly-once worker together) must stay under during the
 * soak: 406 MB was its peak in a 60 s soak at 256 connections (2026-11-30); V8 grows its heap lazily with 24 GiB
 * free, so the bound leaves room for that and catches what an unbounded queue would do (gigabytes).
 */
const RSS_BOUND_MB = 512;

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

describe('[faults] the whole cluster down, and an overload soak', () => {
  let cluster: LocalCluster;
  let platform: Platform;

  beforeAll(async () => {
    cluster = await faultsCluster();
    await startDownNodes(cluster);
    platform = await startPlatform({ SLUICE_PRODUCE_TIMEOUT_MS: String(PRODUCE_TIMEOUT_MS), SLUICE_MAX_QUEUED_RECORDS: String(MAX_QUEUED) });
  });

  afterAll(async () => {
    await platform?.stop();
    await startDownNodes(cluster);
  });

  it(`every broker down for ${OUTAGE_MS / 1000} s under load: 503 + Retry-After within the produce timeout, workers resume without dead letters, nothing lost`, { timeout: 600_000 }, async () => {
    const { placed, scored, dlq } = platform.topics;
    type Phase = 'before' | 'down' | 'after';
    let phase = 'before' as Phase;
    const phaseOf = new Map<string, Phase>();
    let stop = false;
    const run = postOrders(`${platform.ingressUrl}/v1/orders`, { count: 1_000_000, concurrency: 16, ratePerSecond: 100, timeoutMs: 60_000, stop: () => stop });
    const tag = setInterval(() => {
      for (const o of run.outcomes) if (!phaseOf.has(o.orderId)) phaseOf.set(o.orderId, phase);
    }, 50);
    await sleep(5000);
    phase = 'down';
    await Promise.all(cluster.nodes.map((n) => n.kill('SIGKILL')));
    await sleep(OUTAGE_MS);
    phase = 'after';
    await Promise.all(cluster.nodes.map((n) => n.start()));
    await waitForFullIsr(cluster, [placed, scored]);
    // Load goes on until the ingress accepts again, then a little longer.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !run.outcomes.slice(-20).some((o) => o.status === 200)) await sleep(500);
    await sleep(5000);
    stop = true;
    const outcomes = await run.done;
    clearInterval(tag);

    const { accepted, refused, byStatus } = summarize(outcomes);
    expect(
      Object.keys(byStatus)
        .map(Number)
        .every((s) => s === 200 || s === 503),
      JSON.stringify(byStatus),
    ).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((o) => o.retryAfter !== null && Number(o.retryAfter) >= 1)).toBe(true);
    const slowest503 = Math.max(...refused.map((o) => o.ms));
    expect(slowest503).toBeLessThan(PRODUCE_TIMEOUT_MS + 3000);
    expect(accepted.some((o) => phaseOf.get(o.orderId) === 'after')).toBe(true);

    const { lost, duplicated } = await scoredCounts(platform.topics.scored, accepted, 180_000);
    const deadLetters = (await readTopics([dlq])).length;
    report('cluster-outage', {
      outageMs: OUTAGE_MS,
      posted: outcomes.length,
      accepted: accepted.length,
      failed: refused.length,
      byStatus,
      slowest503Ms: Math.round(slowest503),
      lost,
      duplicated,
      deadLetters,
    });
    expect({ lost, duplicated, deadLetters }).toEqual({ lost: 0, duplicated: 0, deadLetters: 0 });
  });

  it(
    `open-loop overload: ${SOAK_MS / 1000} s at twice the measured capacity, then ${RECOVERY_MS / 1000} s at half: every answer 200 or 503 + Retry-After, nothing accepted lost, full rate again`,
    { timeout: 600_000 },
    async () => {
      const url = `${platform.ingressUrl}/v1/orders`;
      const client = { connections: CONNECTIONS, perConnection: PER_CONNECTION, timeoutMs: 60_000 };
      // Capacity: what the ingress accepts per second when offered more than it can take (open loop at PROBE_RATE),
      // counted by answers in the last seconds of the probe. A closed-loop probe (256 in flight) measured half of what
      // the ingress then took without refusing: on a loaded box its own client is the bottleneck.
      const probe = await openLoopPipelined(url, [{ name: 'probe', ratePerSecond: PROBE_RATE, durationMs: PROBE_MS }], client);
      const countedFrom = PROBE_MS - PROBE_COUNTED_MS;
      const answered = probe.outcomes.filter((o) => o.status === 200 && o.startedMs + o.ms >= countedFrom && o.startedMs + o.ms < PROBE_MS).length;
      const capacity = Math.max(50, Math.round((answered * 1000) / PROBE_COUNTED_MS));

      const pid = platform.pid()!;
      const rss = { startMb: rssMb(pid), peakMb: rssMb(pid), endMb: 0 };
      const sampler = setInterval(() => (rss.peakMb = Math.max(rss.peakMb, rssMb(pid))), 250);
      const serverBefore = await ordersDurationBuckets(platform.ingressUrl);
      const rejectedBefore = await rejectedByCode(platform.ingressUrl);
      const run = await openLoopPipelined(
        url,
        [
          { name: 'overload', ratePerSecond: capacity * 2, durationMs: SOAK_MS },
          { name: 'after', ratePerSecond: Math.max(1, Math.round(capacity / 2)), durationMs: RECOVERY_MS },
        ],
        client,
      );
      clearInterval(sampler);
      rss.endMb = rssMb(pid);
      const server = durationBetween(serverBefore, await ordersDurationBuckets(platform.ingressUrl));
      const rejectedAfter = await rejectedByCode(platform.ingressUrl);
      const rejected = Object.fromEntries(Object.entries(rejectedAfter).map(([code, n]) => [code, n - (rejectedBefore[code] ?? 0)]));

      const phase = (name: string) => run.outcomes.filter((o) => o.phase === name);
      const figuresOf = (name: string) => {
        const outcomes = phase(name);
        const { accepted, refused, byStatus } = summarize(outcomes);
        const durationS = (name === 'overload' ? SOAK_MS : RECOVERY_MS) / 1000;
        const refusedMs = refused.map((o) => o.ms);
        return {
          offeredPerS: Math.round((run.scheduled[name] ?? 0) / durationS),
          scheduled: run.scheduled[name] ?? 0,
          shedByClient: run.shed[name] ?? 0,
          sent: outcomes.length,
          accepted: accepted.length,
          acceptedPerS: Math.round(accepted.length / durationS),
          refused: refused.length,
          refusedPerS: Math.round(refused.length / durationS),
          byStatus,
          acceptedP50Ms: Math.round(
            percentile(
              accepted.map((o) => o.ms),
              50,
            ),
          ),
          acceptedP99Ms: Math.round(
            percentile(
              accepted.map((o) => o.ms),
              99,
            ),
          ),
          acceptedMaxMs: Math.round(
            percentile(
              accepted.map((o) => o.ms),
              100,
            ),
          ),
          refusedP99Ms: Math.round(percentile(refusedMs, 99)),
          refusedMaxMs: Math.round(percentile(refusedMs, 100)),
        };
      };
      // Recovery: 1-second windows of the phase after the overload, by when each request was sent: the first window that
      // refused nothing (full rate again), and the first from which nothing was refused any more (a stall of Kafka later
      // in the phase refuses again: the queue's expected wait grows while nothing drains).
      const afterStart = run.phaseStartMs.after!;
      const windows: { accepted: number; refused: number }[] = Array.from({ length: Math.ceil(RECOVERY_MS / 1000) }, () => ({ accepted: 0, refused: 0 }));
      for (const o of phase('after')) {
        const w = windows[Math.min(windows.length - 1, Math.floor((o.startedMs - afterStart) / 1000))]!;
        if (o.status === 200) w.accepted += 1;
        else w.refused += 1;
      }
      const lastRefusing = windows.findLastIndex((w) => w.refused > 0);
      const recoveredAfterMs =
        Math.max(
          0,
          windows.findIndex((w) => w.refused === 0),
        ) * 1000;
      const refusingUntilMs = (lastRefusing + 1) * 1000;

      const accepted = [...summarize(probe.outcomes).accepted, ...summarize(run.outcomes).accepted];
      const probeFigures = { offeredPerS: PROBE_RATE, ...summarize(probe.outcomes).byStatus };
      const { counts } = await scoredCounts(platform.topics.scored, accepted, 180_000);
      const ledger = account([...probe.outcomes, ...run.outcomes], await keyCounts(platform.topics.placed), counts);
      const figures = {
        soakMs: SOAK_MS,
        recoveryMs: RECOVERY_MS,
        produceTimeoutMs: PRODUCE_TIMEOUT_MS,
        maxQueuedRecords: MAX_QUEUED,
        connections: CONNECTIONS,
        perConnection: PER_CONNECTION,
        capacityPerS: capacity,
        probe: probeFigures,
        overload: figuresOf('overload'),
        after: figuresOf('after'),
        recoveredAfterMs,
        refusingUntilMs,
        // What the ingress itself measured over both phases (from reading a request to its answer) of the requests it
        // admitted (a refusal at admission never reaches Fastify), and its refusals by code: at admission
        // (SLUICE_OVERLOADED) or at the produce deadline (SLUICE_BROKER_UNAVAILABLE).
        serverRequests: server.requests,
        rejectedByCode: rejected,
        serverP99UnderS: Number.isFinite(server.p99UnderS) ? server.p99UnderS : '>10',
        acceptedPerSecondAfter: windows.map((w) => w.accepted),
        ...ledgerFigures(ledger),
        rssStartMb: Math.round(rss.startMb),
        rssPeakMb: Math.round(rss.peakMb),
        rssEndMb: Math.round(rss.endMb),
        rssBoundMb: RSS_BOUND_MB,
      };
      report('open-loop-overload', figures);
      const text = JSON.stringify(figures);

      // Every request sent has its answer (none given up after the client's 60 s: status 0), 200 or 503 with Retry-After,
      // and the overload was refused (at admission, before the deadline), not only queued.
      const { refused, byStatus } = summarize(run.outcomes);
      expect(
        Object.keys(byStatus)
          .map(Number)
          .every((s) => s === 200 || s === 503),
        text,
      ).toBe(true);
      expect(
        refused.every((o) => o.retryAfter !== null && Number(o.retryAfter) >= 1),
        text,
      ).toBe(true);
      // The excess is served within the deadline or refused, never left waiting past it. Whether there is an excess
      // depends on the box: at load 24-29 the ingress refused 257/s of 754/s offered, while a quiet CI box took all of
      // 4,000/s (twice the 2,000/s the probe offers, p99 375 ms), and a probe raised to 32,000/s measured 11,285/s,
      // where this client's 3,200 outstanding requests, not the ingress, bounded the rate (and the process's RSS
      // passed 900 MB after a million requests): so refusals are recorded, not required.
      expect(figures.overload.accepted, text).toBeGreaterThan(0);
      expect(figures.overload.acceptedMaxMs, text).toBeLessThan(PRODUCE_TIMEOUT_MS + 3000);
      expect(figures.overload.refusedMaxMs, text).toBeLessThan(PRODUCE_TIMEOUT_MS + 3000);
      expect({ lost: ledger.lost, ingress: ledger.duplicatedOnInput, worker: ledger.duplicatedByWorker }, text).toEqual({ lost: 0, ingress: [], worker: [] });
      expect(rss.peakMb, text).toBeLessThan(RSS_BOUND_MB);
      // Back at half the capacity the ingress takes everything again before the phase ends (the last 5 s refuse nothing).
      expect(lastRefusing, text).toBeLessThan(windows.length - 5);
    },
  );
});
