import type { Logger } from '../core/logger.ts';
import { createCodec } from '../core/formats/index.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { benchTopology, cpuSeconds, cpuUsPerEvent, median, round, spawnBench, withAdmin, type BenchEnv, type Child, type EventPool } from './common.ts';
import { loadHttp, type HttpFigures } from './ingress.ts';
import { BENCH_RULES, RULES_METADATA, ruleEvaluationUs } from './rules-profile.ts';

/**
 * Issue 21's bench row: the ingress with three WRITE rules on its subject (two
 * CEL conditions on the message, one CEL_FIELD condition over the PII-tagged
 * fields; bench/rules-profile.ts) against the ingress without rules, each on
 * its own topic and subject, same bodies, single events and batches of 100 at
 * 128 connections. Every round starts a new pair of ingress processes, warms
 * each with the cell's shape and connections and times the two alternated
 * (each side leading half the stage's rounds): a process keeps its speed for
 * its life (in the 23:16 run of 2026-12-06 the rules process spent 5.3 µs per
 * batch event and the other 4.1 in every round, while the rules themselves
 * cost 0.13), so one pair for the whole stage measured that pair, not the
 * rules. The ratio is the median of the rounds' ratios (goal >= 0.9); CPU µs
 * per event (to 0.1 µs) is the ingress process's own. Rule evaluation µs per
 * event is CompiledContract.run on the pool's events in this process.
 */

export interface RulesCell {
  eventsPerRequest: number;
  withRules: { eventsPerSec: number; cpuUsPerEvent: number | null; non2xx: number };
  withoutRules: { eventsPerSec: number; cpuUsPerEvent: number | null };
  /** Median of each round's with / without (rounds where both sides accepted events). */
  ratio: number | null;
  cpuRatio: number | null;
  rounds: { withRules: number[]; withoutRules: number[] };
}

export interface RulesFigures {
  connections: number;
  durationS: number;
  rules: string[];
  cells: RulesCell[];
  /** CPU µs per event of CompiledContract.run('WRITE'): the three rules, and each alone. */
  evaluationUsPerEvent: { total: number; perRule: Record<string, number> };
}

export interface RulesBenchOptions {
  base: { brokers: string[]; registryUrl: string; runId: string };
  pool: EventPool;
  schemaText: string;
  durationS: number;
  rounds: number;
  log: Logger;
}

const CONNECTIONS = 128;

/** A side's topics, and its subject registered with or without the rules: the environment its ingresses run in. */
async function sideFor(options: RulesBenchOptions, stage: string, withRules: boolean): Promise<BenchEnv> {
  const prefix = `bench.${options.base.runId}.${stage}`;
  const env: BenchEnv = { ...options.base, inputTopic: `${prefix}.orders.placed`, outputTopic: `${prefix}.orders.scored`, deadLetterTopic: `${prefix}.orders.placed.dlq`, partitions: 6 };
  await withAdmin(env.brokers, (admin) => admin.createTopics([env.inputTopic, env.outputTopic, env.deadLetterTopic].map((name) => ({ name, partitions: env.partitions, replicationFactor: 1 }))));
  const subject = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!.subject;
  await new RegistryClient(options.base.registryUrl).request('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
    schema: options.schemaText,
    ...(withRules ? { metadata: RULES_METADATA, ruleSet: { domainRules: BENCH_RULES } } : {}),
  });
  return env;
}

async function ingressFor(env: BenchEnv): Promise<{ child: Child; url: string }> {
  const child = spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) });
  const ready = await child.ready;
  return { child, url: `${String(ready.url)}/v1/orders` };
}

/** The rules must be what the ingress enforces: an event breaking the first one is refused, naming it. */
async function checkEnforced(url: string, pool: EventPool): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...pool.orders[0]!, amount: 0 }) });
  const body = await response.text();
  if (response.status !== 422 || !body.includes(BENCH_RULES[0]!.name)) throw new Error(`the rules ingress does not enforce its rules: ${response.status} ${body}`);
}

async function timed(url: string, pid: number | undefined, pool: EventPool, eventsPerRequest: number, durationS: number): Promise<HttpFigures> {
  const before = cpuSeconds(pid);
  const figures = await loadHttp({ url, connections: CONNECTIONS, durationS, bodies: eventsPerRequest === 1 ? pool.singleBodies : pool.batchBodies, eventsPerRequest });
  // To 0.1 µs: the batch cells' ~10 µs per event in whole µs made an 11 / 9 out of what may be 10.6 / 9.4 (a cpuRatio of 1.22 for 1.13).
  const cpu = cpuUsPerEvent(before, cpuSeconds(pid), figures.eventsPerSec * durationS, 1);
  return cpu ? { ...figures, cpuUsPerEvent: cpu } : figures;
}

type SideName = 'withRules' | 'withoutRules';

export async function runRulesBench(options: RulesBenchOptions): Promise<RulesFigures> {
  const { pool, log } = options;
  const codec = createCodec({ schemaType: 'AVRO', schema: options.schemaText, references: [] });
  const evaluationUsPerEvent = ruleEvaluationUs(codec, pool.orders);
  log.info({ evaluationUsPerEvent }, 'rules: CompiledContract.run, CPU µs per event');
  const sides: Record<SideName, BenchEnv> = { withRules: await sideFor(options, 'rules-with', true), withoutRules: await sideFor(options, 'rules-without', false) };
  const shapes = [1, 100];
  const runs = new Map(shapes.map((shape) => [shape, { withRules: [] as HttpFigures[], withoutRules: [] as HttpFigures[] }]));
  for (let r = 0; r < options.rounds; r++) {
    const ingresses = { withRules: await ingressFor(sides.withRules), withoutRules: await ingressFor(sides.withoutRules) };
    try {
      if (r === 0) await checkEnforced(ingresses.withRules.url, pool);
      for (const [shapeIndex, eventsPerRequest] of shapes.entries()) {
        const bodies = eventsPerRequest === 1 ? pool.singleBodies : pool.batchBodies;
        // Each side warmed with the shape and connections about to be timed (a 16-connection warm-up left the first
        // batch round the slowest: 128 connections of batches hold 8x the events in flight).
        for (const side of Object.values(ingresses)) await loadHttp({ url: side.url, connections: CONNECTIONS, durationS: 2, bodies, eventsPerRequest });
        // Which side runs first alternates by round, and the shapes start on different sides: over the stage's odd
        // number of rounds each side leads one more round of one shape than the other.
        const order: SideName[] = (r + shapeIndex) % 2 === 0 ? ['withRules', 'withoutRules'] : ['withoutRules', 'withRules'];
        for (const side of order) {
          const target = ingresses[side];
          const figures = await timed(target.url, target.child.process.pid, pool, eventsPerRequest, options.durationS);
          runs.get(eventsPerRequest)![side].push(figures);
          log.info({ round: r, side, eventsPerRequest, eventsPerSec: figures.eventsPerSec, cpuUsPerEvent: figures.cpuUsPerEvent?.process, non2xx: figures.non2xx }, 'rules run');
        }
      }
    } finally {
      await Promise.all([ingresses.withRules.child.stop(), ingresses.withoutRules.child.stop()]);
    }
  }
  const cells = shapes.map((eventsPerRequest) => cellOf(eventsPerRequest, runs.get(eventsPerRequest)!));
  return { connections: CONNECTIONS, durationS: options.durationS, rules: BENCH_RULES.map((r) => `${r.name} (${r.type}): ${r.expr}`), cells, evaluationUsPerEvent };
}

/** A shape's row: medians of each side, and the median of the rounds' ratios (each round is one pair of processes). */
function cellOf(eventsPerRequest: number, runs: Record<SideName, HttpFigures[]>): RulesCell {
  const eps = (side: HttpFigures[]) => median(side.map((f) => f.eventsPerSec));
  const cpu = (side: HttpFigures[]) => {
    const measured = side.flatMap((f) => (f.cpuUsPerEvent ? [f.cpuUsPerEvent.process] : []));
    return measured.length > 0 ? median(measured) : null;
  };
  const perRound = (pick: (f: HttpFigures) => number | undefined) =>
    runs.withRules.flatMap((w, i) => {
      const a = pick(w);
      const b = pick(runs.withoutRules[i]!);
      // A round where either side accepted nothing (timeouts on a starved machine) measured no ratio.
      return a !== undefined && b !== undefined && a > 0 && b > 0 ? [a / b] : [];
    });
  const ratios = perRound((f) => f.eventsPerSec);
  const cpuRatios = perRound((f) => f.cpuUsPerEvent?.process);
  return {
    eventsPerRequest,
    withRules: { eventsPerSec: eps(runs.withRules), cpuUsPerEvent: cpu(runs.withRules), non2xx: runs.withRules.reduce((s, f) => s + f.non2xx, 0) },
    withoutRules: { eventsPerSec: eps(runs.withoutRules), cpuUsPerEvent: cpu(runs.withoutRules) },
    ratio: ratios.length > 0 ? round(median(ratios)) : null,
    cpuRatio: cpuRatios.length > 0 ? round(median(cpuRatios)) : null,
    rounds: { withRules: runs.withRules.map((f) => f.eventsPerSec), withoutRules: runs.withoutRules.map((f) => f.eventsPerSec) },
  };
}
