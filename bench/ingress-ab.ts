import { spawn } from 'node:child_process';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startRegistry } from '../registry/server.ts';
import { argValue, benchTopology, cpuSeconds, cpuUsPerEvent, eventPool, median, newRunId, spawnBench, withAdmin, type BenchEnv } from './common.ts';
import { loadHttp } from './ingress.ts';
import { BENCH_RULES, RULES_METADATA } from './rules-profile.ts';

/**
 * The ingress of another checkout against this one, on a running broker (KAFKA_BROKERS, default 127.0.0.1:9092):
 * both started side by side as bench/ingress.ts children, one shape at a time, rounds alternated, each round's
 * events/s and CPU µs per event of each ingress process (from /proc), then the medians. For A/B of a change on a
 * shared machine, where CPU per event holds up better than events/s. Not part of `npm run bench`.
 *
 *   node bench/ingress-ab.ts <other checkout> [--rounds 3] [--duration 4] [--connections 128] [--shapes 1,100] [--rules | --rules-ab] [--cpu-prof <dir>] [--perf <dir>]
 *
 * A shape is events per request; with a `k` (`1k`) every request carries a fresh Idempotency-Key. `--rules` registers
 * the schema with the rules stage's three WRITE rules (bench/rules-profile.ts), which both ingresses then enforce.
 * Each ingress has its own idempotency topic (one replica each, as in the bench's idempotency stage).
 *
 * `--rules-ab` (instead of --rules) starts two ingresses of each checkout, one on a subject without rules and one on a
 * subject with the three (each its own topic), all four alternated within each round, and gives each checkout's
 * rules ÷ no-rules (the median of the rounds' ratios, events/s and CPU per event): issue 21's ratio, the base's and
 * the change's measured in the same minutes rather than in two runs of bench/rules.ts apart.
 *
 * With --cpu-prof each ingress writes a profile to <dir>; `node bench/profile-summary.ts --stages <profile> <µs> --last <s>`
 * reads only its last seconds (the timed rounds, without start-up and warm-up). V8's profile samples wall time: a socket
 * write the scheduler pre-empts on a busy machine looks many times its cost. With --perf (Linux `perf`, as root) each
 * ingress's last round of each shape is sampled by CPU time instead, kernel included, to
 * <dir>/ingress-{other,this}-<shape>.data (that round's CPU includes the sampling's); `node bench/perf-stages.ts
 * <file.data> <µs>` splits it into the same stages.
 */

const args = process.argv.slice(2);
const other = args[0];
if (other === undefined || other.startsWith('--'))
  throw new Error('usage: node bench/ingress-ab.ts <other checkout> [--rounds n] [--duration s] [--connections n] [--shapes 1,100,1k] [--rules | --rules-ab] [--cpu-prof dir] [--perf dir]');
const roots = [other, PROJECT_ROOT];
const rounds = Number(argValue(args, '--rounds') ?? 3);
const otherNodeArgs = (argValue(args, '--other-node-args') ?? '').split(' ').filter((a) => a !== '');
const durationS = Number(argValue(args, '--duration') ?? 4);
const connections = Number(argValue(args, '--connections') ?? 128);
const shapes = (argValue(args, '--shapes') ?? '1,100').split(',').map((shape) => ({ name: shape, perRequest: Number.parseInt(shape, 10), keyed: shape.endsWith('k') }));
const withRules = args.includes('--rules');
const rulesAb = args.includes('--rules-ab');
const profileDir = argValue(args, '--cpu-prof');
const perfDir = argValue(args, '--perf');
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/** The ingress's produce requests and records so far (its /metrics): records per produce request is what batching achieved. */
async function produceCounts(url: string): Promise<{ batches: number; records: number }> {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { batches: value('sluice_ingress_produce_batches_total'), records: value('sluice_ingress_produced_records_total') };
}

const runId = newRunId();
const config = loadConfig(process.env, { kafkaBrokers: brokers.join(','), registryTopic: `_schemas_ab_${runId}`, logLevel: 'warn', logFormat: 'json' });
const registry = await startRegistry({ config, logger: createLogger(config, 'ab-registry', 2), port: 0 });
const prefix = `bench.ab.${runId}`;
/** An ingress's topics (its own with --rules-ab: the rules are the subject's, so the sides with and without need two). */
const envOf = (name: string): BenchEnv => ({
  brokers,
  registryUrl: registry.url,
  runId,
  inputTopic: `${prefix}${name}.orders.placed`,
  outputTopic: `${prefix}${name}.orders.scored`,
  deadLetterTopic: `${prefix}${name}.orders.placed.dlq`,
  partitions: 6,
});
/** Each ingress to start: a checkout, its topics, whether its subject has the rules, and its name in files and output. */
const sides = rulesAb
  ? roots.flatMap((root, r) => [
      { root, env: envOf('.plain'), rules: false, file: `${r === 0 ? 'other' : 'this'}-plain`, label: `${root} (no rules)` },
      { root, env: envOf('.rules'), rules: true, file: `${r === 0 ? 'other' : 'this'}-rules`, label: `${root} (rules)` },
    ])
  : roots.map((root, r) => ({ root, env: envOf(''), rules: withRules, file: r === 0 ? 'other' : 'this', label: root }));
for (const side of new Map(sides.map((s) => [s.env.inputTopic, s])).values()) {
  const { env } = side;
  await withAdmin(brokers, (admin) => admin.createTopics([env.inputTopic, env.outputTopic, env.deadLetterTopic].map((name) => ({ name, partitions: env.partitions, replicationFactor: 1 }))));
  const schema = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!;
  await new RegistryClient(registry.url).request('POST', `/subjects/${encodeURIComponent(schema.subject)}/versions`, {
    schema: schema.text,
    ...(side.rules ? { metadata: RULES_METADATA, ruleSet: { domainRules: BENCH_RULES } } : {}),
  });
}
const pool = eventPool();
const children = sides.map(({ root, env, file }, i) => {
  const nodeArgs = [
    ...(profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=ingress-${file}-${shapes.map((s) => s.name).join('-')}-${Date.now()}.cpuprofile`]),
    // JavaScript functions' names for perf (a /tmp/perf-<pid>.map).
    ...(perfDir === undefined ? [] : ['--perf-basic-prof-only-functions']),
    ...(i < sides.length / 2 ? otherNodeArgs : []),
  ];
  // The run id names the idempotency topic (bench/common.ts benchConfig): one each, so none reads another's claims.
  return spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify({ ...env, runId: `${runId}-${i}` }) }, nodeArgs, root);
});
try {
  const urls = await Promise.all(children.map(async (c) => `${String((await c.ready).url)}/v1/orders`));
  // Every ingress reaches steady state (JIT, connections, producer id) before anything counts.
  for (const url of urls) {
    await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1 });
    await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.batchBodies, eventsPerRequest: 100 });
    if (shapes.some((s) => s.keyed)) await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1, idempotencyKeys: `${runId}-warm` });
  }
  // Rounds outermost: each round runs every shape on every ingress (the order alternated), so ratios between shapes
  // (keyed ÷ plain) and between ingresses are of runs a few seconds apart.
  const figures = shapes.map(() => sides.map(() => ({ eventsPerSec: [] as number[], cpuUs: [] as number[] })));
  let turn = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? shapes.map((_, s) => s) : shapes.map((_, s) => shapes.length - 1 - s);
    for (const s of order) {
      const { name, perRequest, keyed } = shapes[s]!;
      for (const i of sides.map((_, k) => (k + turn) % sides.length)) {
        const pid = children[i]!.process.pid;
        const sent = await produceCounts(urls[i]!);
        const recorder =
          perfDir !== undefined && round === rounds - 1
            ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '4000', '-g', '-p', String(pid), '-o', `${perfDir}/ingress-${sides[i]!.file}-${name}.data`], { stdio: 'ignore' })
            : undefined;
        const before = cpuSeconds(pid);
        const load = await loadHttp({
          url: urls[i]!,
          connections,
          durationS,
          bodies: perRequest === 1 ? pool.singleBodies : pool.batchBodies,
          eventsPerRequest: perRequest,
          ...(keyed ? { idempotencyKeys: `${runId}-${round}-${s}-${i}` } : {}),
        });
        // To 0.1 µs: a batch event costs ~7 µs, and a change of a few tenths (the rules' whole cost) vanished in whole µs.
        const cpu = cpuUsPerEvent(before, cpuSeconds(pid), load.eventsPerSec * durationS, 1);
        if (recorder !== undefined) {
          recorder.kill('SIGINT');
          await new Promise((resolve) => recorder.once('exit', resolve));
        }
        const after = await produceCounts(urls[i]!);
        figures[s]![i]!.eventsPerSec.push(load.eventsPerSec);
        figures[s]![i]!.cpuUs.push(cpu?.process ?? Number.NaN);
        console.log(
          `${sides[i]!.label} ×${name} round ${round + 1}: ${load.eventsPerSec} events/s, ${cpu?.process} µs CPU/event (machine ${cpu?.machine}), p50 ${load.latencyMs.p50} ms, p99 ${load.latencyMs.p99} ms, non-2xx ${load.non2xx + load.errors}, ${((after.records - sent.records) / Math.max(1, after.batches - sent.batches)).toFixed(1)} records per produce request`,
        );
      }
      turn++;
    }
  }
  shapes.forEach(({ name }, s) =>
    sides.forEach(({ label }, i) =>
      console.log(`median ${label} ×${name} @${connections}: ${median(figures[s]![i]!.eventsPerSec)} events/s, ${median(figures[s]![i]!.cpuUs)} µs CPU/event (${JSON.stringify(figures[s]![i])})`),
    ),
  );
  // Per round, each later shape ÷ the first (e.g. keyed ÷ plain singles), on each ingress: the median of the rounds' ratios.
  for (let s = 1; s < shapes.length; s++)
    sides.forEach(({ label }, i) => {
      const ratios = figures[s]![i]!.eventsPerSec.map((v, r) => v / figures[0]![i]!.eventsPerSec[r]!);
      console.log(`ratio ${label} ×${shapes[s]!.name} ÷ ×${shapes[0]!.name}: median ${median(ratios).toFixed(3)} (${ratios.map((v) => v.toFixed(3)).join(', ')})`);
    });
  // With --rules-ab, per round, each checkout's rules ingress ÷ its no-rules one (sides 2k and 2k + 1).
  for (let k = 0; rulesAb && k < sides.length; k += 2)
    shapes.forEach(({ name }, s) => {
      const [plain, rules] = [figures[s]![k]!, figures[s]![k + 1]!];
      const ratios = rules.eventsPerSec.map((v, r) => v / plain.eventsPerSec[r]!);
      const cpuRatios = rules.cpuUs.map((v, r) => v / plain.cpuUs[r]!);
      console.log(
        `rules ÷ no rules ${sides[k]!.root} ×${name}: events/s median ${median(ratios).toFixed(3)} (${ratios.map((v) => v.toFixed(3)).join(', ')}), CPU/event median ${median(cpuRatios).toFixed(3)} (${cpuRatios.map((v) => v.toFixed(3)).join(', ')})`,
      );
    });
} finally {
  await Promise.all(children.map((c) => c.stop()));
  await registry.close();
}
