/**
 * A/B of end-to-end latency at a low rate (issue 20): two checkouts (--a, --b: project roots), each with its own
 * ingress and score-orders worker (exactly once) on its own topics of one broker, measured in turns (A, B, B, A,
 * ...) at --rate events/s for --seconds each. Per contender: the p50/p99 of each run, and per stage (medians over
 * its runs of each run's p50 and p99):
 *
 *   post→ingress produce      the input record's timestamp (the ingress's produce request) minus the POST time
 *   ingress→worker fetch      the worker's first Fetch answer with records after that
 *   fetch→txn start           waiting for the transaction before (and the handler)
 *   txn start→produce         the round trips before the records go (the output's timestamp)
 *   produce→EndTxn answered   Produce, TxnOffsetCommit, EndTxn
 *   EndTxn→visible            markers, and the read_committed reader's fetch
 *
 * The worker's Kafka requests are traced by bench/api-trace.ts (preloaded), so any checkout's worker is timed alike.
 * A run whose load generator could not send 95% of its events (a starved machine: one connection waits for each
 * answer) is marked; the medians take every run, and also say how many were starved.
 *
 *   node bench/e2e-ab.ts --a /work/main --b . [--rounds 3] [--seconds 20] [--rate 100] [--brokers 127.0.0.1:9092]
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startRegistry } from '../registry/server.ts';
import { benchTopology, cpuSeconds, eventPool, median, newRunId, percentile, round, spawnBench, withAdmin, type BenchEnv, type Child } from './common.ts';
import { measureE2e, type E2eSample } from './e2e-latency.ts';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: PROJECT_ROOT },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '15' },
    brokers: { type: 'string' },
  },
});
if (!args.a) throw new Error('--a <project root of the other checkout> is required');
const config = loadConfig(process.env, { logLevel: 'warn', logFormat: 'json', ...(args.brokers ? { kafkaBrokers: args.brokers } : {}) });
const brokers = config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
const log = createLogger(config, 'bench-e2e-ab', 2);
const out = (line: string) => process.stdout.write(`${line}\n`);

const API = { produce: 0, fetch: 1, addPartitions: 24, addOffsets: 25, endTxn: 26, txnOffsetCommit: 28 } as const;
const TXN_APIS = new Set<number>([API.produce, API.addPartitions, API.addOffsets, API.endTxn, API.txnOffsetCommit]);

interface Call {
  api: number;
  start: number;
  end: number;
  error: string;
  data: boolean;
  connection: number;
}

function readTrace(file: string, from: number, to: number): Call[] {
  if (!existsSync(file)) return [];
  const calls: Call[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [api, start, end, error, data, connection] = line.split(' ');
    if (end === undefined) continue;
    const call = { api: Number(api), start: Number(start), end: Number(end), error: error === '-' ? '' : error!, data: data === 'D', connection: Number(connection) };
    if (call.start >= from && call.end <= to) calls.push(call);
  }
  return calls.sort((x, y) => x.start - y.start);
}

/** First index in `sorted` whose `key` is >= `value`. */
function lowerBound<T>(sorted: T[], value: number, key: (t: T) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(sorted[mid]!) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const STAGES = ['post→ingress produce', 'ingress→worker fetch', 'fetch→txn start', 'txn start→produce', 'produce→EndTxn answered', 'EndTxn→visible', 'total'] as const;
type Stage = (typeof STAGES)[number];

interface RunFigures {
  p50: number;
  p99: number;
  sent: number;
  received: number;
  stages: Record<Stage, { p50: number; p99: number }>;
  apis: Record<string, { count: number; p50: number; p99: number; errors: Record<string, number> }>;
  transactions: number;
  cpuUsPerEvent: number | null;
}

function stagesOf(samples: E2eSample[], calls: Call[]): RunFigures['stages'] {
  const fetches = calls.filter((c) => c.api === API.fetch && c.data);
  const txnCalls = calls.filter((c) => TXN_APIS.has(c.api));
  // Transactions: per connection (a transactional producer has one transaction open at a time), the calls up to and including each EndTxn answer.
  const txns: { start: number; produces: number[]; end: number }[] = [];
  const current = new Map<number, { start: number; produces: number[]; end: number }>();
  for (const call of txnCalls) {
    let txn = current.get(call.connection);
    if (!txn) current.set(call.connection, (txn = { start: call.start, produces: [], end: Number.NaN }));
    if (call.api === API.produce) txn.produces.push(call.start);
    if (call.api === API.endTxn && !call.error) {
      txn.end = call.end;
      txns.push(txn);
      current.delete(call.connection);
    }
  }
  const values = Object.fromEntries(STAGES.map((s) => [s, [] as number[]])) as Record<Stage, number[]>;
  for (const s of samples) {
    const fetch = fetches[lowerBound(fetches, s.input, (c) => c.end)];
    // The output's timestamp is taken in whole ms as its Produce request is written.
    const txn = txns.find((t) => t.produces.some((p) => p >= s.output && p < s.output + 1));
    values['post→ingress produce'].push(s.input - s.sent);
    values.total.push(s.visible - s.sent);
    if (!fetch || !txn) continue;
    values['ingress→worker fetch'].push(fetch.end - s.input);
    values['fetch→txn start'].push(txn.start - fetch.end);
    values['txn start→produce'].push(s.output - txn.start);
    values['produce→EndTxn answered'].push(txn.end - s.output);
    values['EndTxn→visible'].push(s.visible - txn.end);
  }
  return Object.fromEntries(
    STAGES.map((stage) => {
      const sorted = values[stage].sort((x, y) => x - y);
      return [stage, { p50: round(percentile(sorted, 50), 1), p99: round(percentile(sorted, 99), 1) }];
    }),
  ) as RunFigures['stages'];
}

function apisOf(calls: Call[]): RunFigures['apis'] {
  const byApi = new Map<number, Call[]>();
  for (const call of calls) byApi.set(call.api, [...(byApi.get(call.api) ?? []), call]);
  const result: RunFigures['apis'] = {};
  for (const [api, list] of byApi) {
    if (!TXN_APIS.has(api)) continue;
    const name = Object.entries(API).find(([, key]) => key === api)?.[0] ?? String(api);
    const times = list.map((c) => c.end - c.start).sort((x, y) => x - y);
    const errors: Record<string, number> = {};
    for (const c of list) if (c.error) errors[c.error] = (errors[c.error] ?? 0) + 1;
    result[name] = { count: list.length, p50: round(percentile(times, 50), 2), p99: round(percentile(times, 99), 2), errors };
  }
  return result;
}

interface Contender {
  name: 'A' | 'B';
  root: string;
  env: BenchEnv;
  ingress: Child;
  worker: Child;
  url: string;
  trace: string;
}

const runId = newRunId();
const registry = await startRegistry({ config, logger: log, port: 0, topic: `_schemas_bench_${runId}` });
const contenders: Contender[] = [];
try {
  const pool = eventPool(10);
  for (const [name, root] of [
    ['A', args.a],
    ['B', args.b],
  ] as const) {
    const prefix = `bench.${runId}.e2e-ab-${name}`;
    const env: BenchEnv = {
      brokers,
      registryUrl: registry.url,
      runId: `${runId}${name}`,
      inputTopic: `${prefix}.orders.placed`,
      outputTopic: `${prefix}.orders.scored`,
      deadLetterTopic: `${prefix}.orders.placed.dlq`,
      partitions: 6,
    };
    await withAdmin(brokers, (admin) => admin.createTopics([env.inputTopic, env.outputTopic, env.deadLetterTopic].map((topic) => ({ name: topic, partitions: env.partitions, replicationFactor: 1 }))));
    const schema = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!;
    await new RegistryClient(registry.url).register(schema.subject, schema.text);
    const trace = join(PROJECT_ROOT, 'bench', 'results', `.e2e-ab-${runId}-${name}.trace`);
    const ingress = spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, [], root);
    const worker = spawnBench('e2e-latency.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env), SLUICE_BENCH_API_TRACE: trace }, ['--import', join(PROJECT_ROOT, 'bench', 'api-trace.ts')], root);
    const ready = await ingress.ready;
    await worker.ready;
    contenders.push({ name, root, env, ingress, worker, url: `${String(ready.url)}/v1/orders`, trace });
  }
  const measure = async (c: Contender, phase: string, ratePerSec: number, durationS: number) => {
    const before = cpuSeconds(c.worker.process.pid);
    const from = performance.timeOrigin + performance.now();
    const figures = await measureE2e({
      ingressUrl: c.url,
      brokers,
      outputTopic: c.env.outputTopic,
      inputTopic: c.env.inputTopic,
      ratePerSec,
      durationS,
      template: pool.orders[0]!,
      phase: `${c.name}-${phase}`,
    });
    const after = cpuSeconds(c.worker.process.pid);
    const calls = readTrace(c.trace, from, performance.timeOrigin + performance.now());
    return { figures, calls, cpu: before && after && figures.received > 0 ? Math.round(((after.process - before.process) * 1e6) / figures.received) : null };
  };
  for (const c of contenders) await measure(c, 'warmup', 300, Number(args.warmup));
  const runs: Record<'A' | 'B', RunFigures[]> = { A: [], B: [] };
  const wanted = Number(args.rate) * Number(args.seconds);
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
      const { figures, calls, cpu } = await measure(c, `r${r}`, Number(args.rate), Number(args.seconds));
      const run: RunFigures = {
        p50: figures.latencyMs.p50,
        p99: figures.latencyMs.p99,
        sent: figures.sent,
        received: figures.received,
        stages: stagesOf(figures.samples ?? [], calls),
        apis: apisOf(calls),
        transactions: calls.filter((x) => x.api === API.endTxn && !x.error).length,
        cpuUsPerEvent: cpu,
      };
      runs[c.name].push(run);
      out(
        `${c.name} round ${r}${run.sent >= 0.95 * wanted ? '' : ' (starved: the load generator sent under 95%)'}: p50 ${run.p50} p99 ${run.p99} ms (${run.received}/${run.sent}), ${run.transactions} transactions, worker CPU ${run.cpuUsPerEvent} µs/event`,
      );
      out(`  stages p50/p99: ${STAGES.map((s) => `${s} ${run.stages[s].p50}/${run.stages[s].p99}`).join(', ')}`);
      out(
        `  requests p50/p99 ms: ${Object.entries(run.apis)
          .map(([name, a]) => `${name} ×${a.count} ${a.p50}/${a.p99}${Object.keys(a.errors).length ? ` ${JSON.stringify(a.errors)}` : ''}`)
          .join(', ')}`,
      );
    }
  }
  out('\nMedians over the rounds (p50 / p99, ms):');
  for (const c of contenders) {
    const list = runs[c.name];
    const med = (f: (r: RunFigures) => number) => round(median(list.map(f)), 1);
    out(
      `${c.name} (${c.root}, ${list.length} runs, ${list.filter((r) => r.sent < 0.95 * wanted).length} starved): end to end ${med((r) => r.p50)} / ${med((r) => r.p99)} (p99s ${list.map((r) => r.p99).join(', ')}), worker CPU ${med((r) => r.cpuUsPerEvent ?? Number.NaN)} µs/event`,
    );
    for (const stage of STAGES) out(`  ${stage.padEnd(26)} ${med((r) => r.stages[stage].p50)} / ${med((r) => r.stages[stage].p99)}`);
  }
} finally {
  await Promise.all(contenders.flatMap((c) => [c.ingress.stop(), c.worker.stop()]));
  for (const c of contenders) rmSync(c.trace, { force: true });
  await withAdmin(brokers, (admin) => admin.deleteTopics(contenders.flatMap((c) => [c.env.inputTopic, c.env.outputTopic, c.env.deadLetterTopic]))).catch(() => undefined);
  await registry.close();
}
