import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadConfig, PROJECT_ROOT, type SluiceConfig } from '../core/config.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from '../broker/broker.ts';
import { startRegistry } from '../registry/server.ts';
import type { BareProducerFigures } from './bare-harness.ts';
import { benchTopology, cpuSeconds, cpuUsPerEvent, encodePool, eventPool, median, newRunId, round, spawnBench, withAdmin, type BenchEnv, type Child, type EventPool } from './common.ts';
import { measureE2e, type E2eFigures } from './e2e-latency.ts';
import { measureIdempotency, measureReadPath, type IdempotencyFigures, type ReadPathFigures } from './http-extras.ts';
import { loadHttp, type HttpFigures, type LoadSpec } from './ingress.ts';
import { runJavaProducer, type JavaProducerFigures } from './java-producer.ts';
import { runWorkerBench, runWorkerScaleBench, type WorkerBenchOptions, type WorkerFigures } from './worker.ts';
import { computeGoals, computeRatios, medianCpu, writeResults, type BenchResults, type CompressionRow, type HttpContender, type IngressCell } from './report.ts';
import { measureSerialization, type SerializationFigures } from './serialization.ts';
import { runReplicated, type ReplicatedFigures } from './replicated.ts';
import { runRulesBench, type RulesFigures } from './rules.ts';

/**
 * `npm run bench`: every contender on the same broker, schema and event bodies,
 * in one run, alternating, so the ratios hold even on a busy machine.
 *
 *   npm run bench                      quick mode (about 3 minutes)
 *   npm run bench -- --full            longer runs, three rounds per cell, and the ingress and exactly-once
 *                                      worker on a three-broker cluster, RF 3 beside RF 1 (bench/replicated.ts)
 *   npm run bench -- --cpu-prof        also writes CPU profiles of the Sluice ingress and worker to bench/results
 *   npm run bench -- --against-running Sluice at 127.0.0.1:8080 (npm start) vs the naive service at 64 connections
 *   npm run bench -- --before=<rev>      the ingress of <rev> (default 5213e6e, or SLUICE_BENCH_BEFORE) as a third contender,
 *                                      from a git worktree under data/; --before=none skips it
 *   npm run bench -- --only=ingress,e2e  some stages (ingress, rules, ceilings, worker, e2e, serialization); --no-readme leaves README.md alone
 *
 * With KAFKA_BROKERS unset it starts its own broker on 29092/29093 (data in
 * data/bench-kafka, wiped each run) and stops it at the end.
 */

interface Mode {
  name: 'quick' | 'full';
  httpDurationS: number;
  rounds: number;
  /**
   * Rounds of the stages whose row is one ingress against itself with a feature on and off (rules, Idempotency-Key):
   * their difference is a tenth or two of the figure, about what one round swings by on a shared box, so a median
   * of three flipped either way from run to run.
   */
  ratioRounds: number;
  connections: number[];
  bareDurationS: number;
  javaRecords: number;
  e2eDurationS: number;
  serializationMs: number;
}

// Quick: three alternated rounds per cell too (each ratio a median), 4 s each, without the 1-connection column.
const QUICK: Mode = { name: 'quick', httpDurationS: 4, rounds: 3, ratioRounds: 5, connections: [16, 128], bareDurationS: 5, javaRecords: 400_000, e2eDurationS: 8, serializationMs: 3000 };
const FULL: Mode = { name: 'full', httpDurationS: 15, rounds: 3, ratioRounds: 5, connections: [1, 16, 128], bareDurationS: 15, javaRecords: 2_000_000, e2eDurationS: 30, serializationMs: 10_000 };

const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');
/** The previous main the ingress is compared with in the same run (issue 20); `--before=<rev>` or SLUICE_BENCH_BEFORE, `none` to skip. */
const DEFAULT_BEFORE = '5213e6e';
// .gitignore keeps bench/results/*.cpuprofile out of the repository.
const PROFILE_DIR = RESULTS_DIR;

interface Broker {
  brokers: string[];
  stop(): Promise<void>;
  local: boolean;
}

async function ensureBroker(config: SluiceConfig, log: Logger): Promise<Broker> {
  if (config.kafkaBrokers) return { brokers: config.kafkaBrokers, local: false, stop: async () => undefined };
  const benchConfig = loadConfig(process.env, {
    kafkaPort: process.env.SLUICE_BENCH_KAFKA_PORT ?? '29092',
    kafkaControllerPort: process.env.SLUICE_BENCH_KAFKA_CONTROLLER_PORT ?? '29093',
  });
  const options = localKafkaOptions(benchConfig, 'bench-kafka');
  await stopLocalKafka(options.dataDir, log);
  rmSync(options.dataDir, { recursive: true, force: true });
  const kafka = await startLocalKafka(options, log);
  return {
    brokers: kafka.brokers,
    local: true,
    stop: async () => {
      await stopLocalKafka(options.dataDir, log);
      rmSync(options.dataDir, { recursive: true, force: true });
    },
  };
}

async function createBenchTopics(env: BenchEnv): Promise<void> {
  await withAdmin(env.brokers, (admin) => admin.createTopics([env.inputTopic, env.outputTopic, env.deadLetterTopic].map((name) => ({ name, partitions: env.partitions, replicationFactor: 1 }))));
}

function envFor(base: { brokers: string[]; registryUrl: string; runId: string }, stage: string): BenchEnv {
  const prefix = `bench.${base.runId}.${stage}`;
  return { ...base, inputTopic: `${prefix}.orders.placed`, outputTopic: `${prefix}.orders.scored`, deadLetterTopic: `${prefix}.orders.placed.dlq`, partitions: 6 };
}

function sluiceChild(env: BenchEnv, profile: boolean, name: string): Child {
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
  return spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, nodeArgs);
}

function naiveChild(env: { brokers: string[]; registryUrl: string }, topic: string, subject: string): Child {
  return spawnBench('naive-service.ts', [], { NAIVE_BROKERS: env.brokers.join(','), NAIVE_REGISTRY_URL: env.registryUrl, NAIVE_TOPIC: topic, NAIVE_SUBJECT: subject });
}

async function urlOf(child: Child, path = '/v1/orders'): Promise<string> {
  const ready = await child.ready;
  if (typeof ready.url !== 'string') throw new Error(`child announced no url: ${JSON.stringify(ready)}`);
  return `${ready.url}${path}`;
}

/** One timed load on a contender, with the CPU its process and the machine spent per accepted event. */
async function timedLoad(spec: LoadSpec, pid: number | undefined): Promise<HttpFigures> {
  const before = cpuSeconds(pid);
  const figures = await loadHttp(spec);
  const cpu = cpuUsPerEvent(before, cpuSeconds(pid), figures.eventsPerSec * spec.durationS);
  return cpu ? { ...figures, cpuUsPerEvent: cpu } : figures;
}

async function ingressMatrix(mode: Mode, urls: Partial<Record<HttpContender, string>>, pids: Partial<Record<HttpContender, number>>, pool: EventPool, log: Logger): Promise<IngressCell[]> {
  const cells: IngressCell[] = [];
  const contenders = (['sluice', 'naive', 'before'] as const).filter((c) => urls[c] !== undefined);
  // Every service reaches steady state (JIT, connections, producer id) before anything counts.
  for (const contender of contenders) {
    await loadHttp({ url: urls[contender]!, connections: 16, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1 });
  }
  let turn = 0;
  for (const eventsPerRequest of [1, 100]) {
    for (const connections of mode.connections) {
      const rounds: Record<HttpContender, HttpFigures[]> = { sluice: [], naive: [], before: [] };
      for (let r = 0; r < mode.rounds; r++) {
        // Rotated each round, so no contender always runs first or last.
        const order = contenders.map((_, i) => contenders[(i + turn) % contenders.length]!);
        turn++;
        for (const contender of order) {
          const figures = await timedLoad(
            { url: urls[contender]!, connections, durationS: mode.httpDurationS, bodies: eventsPerRequest === 1 ? pool.singleBodies : pool.batchBodies, eventsPerRequest },
            pids[contender],
          );
          rounds[contender].push(figures);
          log.info(
            {
              contender,
              connections,
              eventsPerRequest,
              eventsPerSec: figures.eventsPerSec,
              cpuUsPerEvent: figures.cpuUsPerEvent,
              p99: figures.latencyMs.p99,
              non2xx: figures.non2xx,
              errors: figures.errors,
            },
            'ingress run',
          );
        }
      }
      for (const contender of contenders) {
        cells.push({
          contender,
          connections,
          eventsPerRequest,
          rounds: rounds[contender],
          eventsPerSec: median(rounds[contender].map((f) => f.eventsPerSec)),
          cpuUsPerEvent: medianCpu(rounds[contender]),
        });
      }
    }
  }
  return cells;
}

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/**
 * The ingress under each SLUICE_COMPRESSION codec, each on its own topic: batches of 100 and single events at 128
 * connections (events/s, CPU per event), then the bytes per record on the broker's log (DescribeLogDirs, so it
 * holds with KAFKA_BROKERS too). The default codec is chosen from these rows.
 */
async function compressionRows(mode: Mode, base: { brokers: string[]; registryUrl: string; runId: string }, pool: EventPool, schemaText: string, log: Logger): Promise<CompressionRow[]> {
  const rows: CompressionRow[] = [];
  for (const codec of CODECS) {
    const env = envFor(base, `compression-${codec}`);
    await createBenchTopics(env);
    const subject = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!.subject;
    await new RegistryClient(base.registryUrl).register(subject, schemaText);
    const child = spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env), SLUICE_COMPRESSION: codec });
    try {
      const url = await urlOf(child);
      await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.batchBodies, eventsPerRequest: 100 });
      const load = (per: number): Promise<HttpFigures> =>
        timedLoad({ url, connections: 128, durationS: mode.httpDurationS, bodies: per === 1 ? pool.singleBodies : pool.batchBodies, eventsPerRequest: per }, child.process.pid);
      const batches = await load(100);
      const single = await load(1);
      const { records, bytes } = await withAdmin(env.brokers, async (admin) => ({
        records: [...(await admin.listOffsets(env.inputTopic, 'latest')).values()].reduce((sum, offset) => sum + Number(offset), 0),
        bytes: await admin.logBytes(env.inputTopic),
      }));
      const row: CompressionRow = {
        codec,
        batchEventsPerSec: batches.eventsPerSec,
        batchCpuUsPerEvent: batches.cpuUsPerEvent ?? null,
        singleEventsPerSec: single.eventsPerSec,
        singleCpuUsPerEvent: single.cpuUsPerEvent ?? null,
        records,
        logBytes: bytes,
        bytesPerRecord: records > 0 ? round(bytes / records, 1) : null,
      };
      log.info({ ...row }, 'compression');
      rows.push(row);
    } finally {
      await child.stop();
    }
  }
  return rows;
}

/** `script`: bare-producer.ts (kafkajs) or bare-platformatic-producer.ts (@platformatic/kafka), same records and guarantees. */
async function runBare(mode: Mode, env: BenchEnv, pool: EventPool, script: string): Promise<BareProducerFigures> {
  const file = join(RESULTS_DIR, `.records-${env.runId}.txt`);
  writeFileSync(file, pool.encoded.map((value, i) => `${pool.orders[i]!.orderId} ${value.toString('base64')}`).join('\n'));
  try {
    const child = spawnBench(script, ['--duration', String(mode.bareDurationS)], {
      SLUICE_BENCH_BROKERS: env.brokers.join(','),
      SLUICE_BENCH_TOPIC: env.inputTopic,
      SLUICE_BENCH_RECORDS_FILE: file,
    });
    return (await child.ready) as unknown as BareProducerFigures;
  } finally {
    rmSync(file, { force: true });
  }
}

async function runE2e(mode: Mode, env: BenchEnv, pool: EventPool, peak: number, profile: boolean, log: Logger): Promise<BenchResults['e2e']> {
  await createBenchTopics(env);
  const ingress = sluiceChild(env, profile, 'e2e-ingress');
  const worker = spawnBench('e2e-latency.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []);
  try {
    const url = await urlOf(ingress);
    await worker.ready;
    const template = pool.orders[0]!;
    const base = { ingressUrl: url, brokers: env.brokers, outputTopic: env.outputTopic, durationS: mode.e2eDurationS, template };
    // Warms the whole path before measuring: Node's JIT, the worker's producer ids, and the
    // broker's own JIT for transactions (a fresh broker has run only a few dozen
    // EndTxn by now; with 30 s of warm-up instead of 10, p50 fell from 57 to 31 ms, and a broker
    // warm from an hour of traffic gives p50 19 / p99 45 ms). SLUICE_BENCH_WARMUP_S sets it.
    await measureE2e({ ...base, durationS: Number(process.env.SLUICE_BENCH_WARMUP_S ?? 10), ratePerSec: 300, phase: 'warmup', drainMs: 3000 });
    // Three runs at 100 events/s; the figure is the run with the median p99 (its other percentiles with it).
    const lowRuns: E2eFigures[] = [];
    for (let r = 0; r < 3; r++) lowRuns.push(await measureE2e({ ...base, ratePerSec: 100, phase: `low${r}` }));
    const low = [...lowRuns].sort((a, b) => a.latencyMs.p99 - b.latencyMs.p99)[1]!;
    log.info({ ...low, p99s: lowRuns.map((f) => f.latencyMs.p99) }, 'end-to-end, low rate (median of three runs)');
    const halfRate = Math.max(200, Math.round(peak / 2));
    const halfPeak: E2eFigures = await measureE2e({ ...base, ratePerSec: halfRate, phase: 'half', drainMs: 15_000 });
    log.info({ ...halfPeak }, 'end-to-end, 50% of peak');
    return {
      low,
      lowP99sMs: lowRuns.map((f) => f.latencyMs.p99),
      halfPeak,
      note: `worker delivery: ${benchTopology(env).workers[0]?.delivery ?? 'unknown'}; load generator and read_committed consumer share the bench process`,
    };
  } finally {
    await Promise.all([ingress.stop(), worker.stop()]);
  }
}

function machineFacts(config: SluiceConfig, broker: Broker): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: round(totalmem() / 2 ** 30, 1),
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    kafkaVersion: config.kafkaVersion,
    brokers: broker.brokers,
    localBroker: broker.local,
  };
}

const STAGES = ['ingress', 'rules', 'compression', 'idempotency', 'read', 'ceilings', 'worker', 'e2e', 'serialization', 'replicated'] as const;
type Stage = (typeof STAGES)[number];

function stagesOf(args: string[]): Set<Stage> {
  const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  if (only === undefined) return new Set(STAGES);
  const chosen = only.split(',').map((s) => s.trim());
  const unknown = chosen.filter((s) => !(STAGES as readonly string[]).includes(s));
  if (unknown.length > 0) throw new Error(`--only: unknown stage(s) ${unknown.join(', ')} (stages: ${STAGES.join(', ')})`);
  return new Set(chosen as Stage[]);
}

/**
 * A detached git worktree of `revision` under data/ (made once, then reused), with its packages (the project's
 * node_modules linked in when the locks agree), so that revision's own bench children run beside today's. Null, with a note, when the history lacks it (a
 * shallow clone).
 */
function prepareBefore(revision: string, notes: string[], log: Logger): string | null {
  const git = (...args: string[]) => spawnSync('git', ['-C', PROJECT_ROOT, ...args], { encoding: 'utf8' });
  const resolved = git('rev-parse', '--verify', '--quiet', `${revision}^{commit}`);
  if (resolved.status !== 0) {
    notes.push(`before/after: revision ${revision} is not in this clone's history (shallow clone?); the 'before' contender was skipped`);
    return null;
  }
  const commit = resolved.stdout.trim();
  const dir = join(PROJECT_ROOT, 'data', `bench-before-${commit.slice(0, 12)}`);
  if (!existsSync(join(dir, 'bench', 'ingress.ts'))) {
    rmSync(dir, { recursive: true, force: true });
    git('worktree', 'prune');
    const added = git('worktree', 'add', '--detach', dir, commit);
    if (added.status !== 0) {
      notes.push(`before/after: git worktree add of ${revision} failed (${added.stderr.trim()}); the 'before' contender was skipped`);
      return null;
    }
  }
  if (!existsSync(join(dir, 'node_modules'))) {
    // Today's packages serve it only if it locked the same ones; otherwise it installs its own, once.
    if (readFileSync(join(dir, 'package-lock.json'), 'utf8') === readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) {
      symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    } else {
      log.info({ revision, dir }, "before/after: installing the earlier revision's own packages (npm ci, once)");
      const installed = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
      if (installed.status !== 0) {
        rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
        notes.push(`before/after: npm ci of ${revision} failed (${installed.stderr.trim().split('\n').slice(-3).join(' ')}); the 'before' contender was skipped`);
        return null;
      }
    }
  }
  log.info({ revision, commit, dir }, "before/after: the earlier revision's ingress runs from its worktree");
  return dir;
}

async function runAll(mode: Mode, profile: boolean, stages: Set<Stage>, config: SluiceConfig, log: Logger, beforeRevision: string): Promise<BenchResults> {
  const started = Date.now();
  const notes: string[] = [];
  const broker = await ensureBroker(config, log);
  const runId = newRunId();
  const registryConfig = loadConfig(process.env, { kafkaBrokers: broker.brokers.join(','), registryTopic: `_schemas_bench_${runId}`, logLevel: 'warn', logFormat: 'json' });
  const registry = await startRegistry({ config: registryConfig, logger: createLogger(registryConfig, 'bench-registry', 2), port: 0 });
  const children: Child[] = [];
  try {
    const base = { brokers: broker.brokers, registryUrl: registry.url, runId };
    const env = envFor(base, 'ingress');
    await createBenchTopics(env);
    const topology = benchTopology(env);
    const schema = topology.topics.find((t) => t.name === env.inputTopic)?.valueSchema;
    if (!schema) throw new Error('the bench topology has no input schema');
    const schemaId = await new RegistryClient(registry.url).register(schema.subject, schema.text);
    const pool = eventPool();
    await encodePool(pool, schema.text, schemaId);
    if (profile) mkdirSync(PROFILE_DIR, { recursive: true });

    log.info({ mode: mode.name, brokers: broker.brokers, runId }, 'ingress: Sluice vs the naive service');
    let cells: IngressCell[] = [];
    if (stages.has('ingress')) {
      // The earlier revision is installed (npm ci, once per machine) before any contender starts: on a new machine the
      // first run's contender started beside that install died by a signal before it was ready, twice.
      const beforeRoot = beforeRevision === 'none' ? null : prepareBefore(beforeRevision, notes, log);
      const sluice = sluiceChild(env, profile, 'ingress');
      const naive = naiveChild(base, env.inputTopic, schema.subject);
      children.push(sluice, naive);
      // The earlier revision's own bench/ingress.ts, on the same broker, registry, topic and bodies.
      const before = beforeRoot === null ? null : spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, [], beforeRoot);
      if (before) children.push(before);
      const urls = { sluice: await urlOf(sluice), naive: await urlOf(naive), ...(before ? { before: await urlOf(before) } : {}) };
      cells = await ingressMatrix(mode, urls, { sluice: sluice.process.pid, naive: naive.process.pid, ...(before ? { before: before.process.pid } : {}) }, pool, log);
      await Promise.all([sluice.stop(), naive.stop(), before?.stop()]);
    }

    let rules: RulesFigures | null = null;
    if (stages.has('rules')) {
      log.info('rules: the ingress with three WRITE rules vs without, single events and batches of 100 at 128 connections');
      rules = await runRulesBench({ base, pool, schemaText: schema.text, durationS: mode.httpDurationS, rounds: mode.ratioRounds, log });
    }

    let compression: CompressionRow[] | null = null;
    if (stages.has('compression')) {
      log.info('compression: the ingress under each codec, batches of 100 and single events at 128 connections');
      compression = await compressionRows(mode, base, pool, schema.text, log);
    }

    let idempotency: IdempotencyFigures | null = null;
    let readPath: ReadPathFigures | null = null;
    if (stages.has('idempotency') || stages.has('read')) {
      const sluice = sluiceChild(env, profile, 'ingress-extras');
      children.push(sluice);
      const url = await urlOf(sluice);
      if (stages.has('idempotency')) {
        log.info('ingress: single events with and without Idempotency-Key, 128 connections');
        idempotency = await measureIdempotency(url, pool, mode.httpDurationS, mode.ratioRounds, runId, sluice.process.pid);
        log.info({ ...idempotency }, 'idempotency');
      }
      if (stages.has('read')) {
        const available = await withAdmin(env.brokers, async (admin) => [...(await admin.listOffsets(env.inputTopic, 'latest')).values()].reduce((sum, offset) => sum + Number(offset), 0));
        if (available > 0) {
          // Every offset of the input topic is a record (nothing writes transactions there).
          const records = Math.min(available, 200_000);
          readPath = await measureReadPath(url.replace(/\/v1\/orders$/, ''), env.inputTopic, records, { brokers: broker.brokers, registryUrl: registry.url }, sluice.process.pid);
          log.info({ ...readPath }, 'read path, sluice tail and kcat, alternated');
        } else notes.push('read: the input topic is empty (run it with the ingress or idempotency stage)');
      }
      await sluice.stop();
    }

    log.info('ceilings: bare batched kafkajs and @platformatic/kafka producers, Kafka ProducerPerformance');
    const bareRuns: BareProducerFigures[] = [];
    const barePlatformaticRuns: BareProducerFigures[] = [];
    const javaRuns: JavaProducerFigures[] = [];
    // Contenders alternated within each round, so a noisy moment does not favour one.
    for (let r = 0; stages.has('ceilings') && r < Math.min(2, mode.rounds); r++) {
      bareRuns.push(await runBare(mode, env, pool, 'bare-producer.ts'));
      barePlatformaticRuns.push(await runBare(mode, env, pool, 'bare-platformatic-producer.ts'));
      javaRuns.push(await runJavaProducer(config, log, { brokers: broker.brokers, topic: env.inputTopic, records: mode.javaRecords, recordBytes: pool.averageRecordBytes }));
    }
    const bareBatched = bareRuns.sort((a, b) => a.eventsPerSec - b.eventsPerSec)[bareRuns.length - 1] ?? null;
    const barePlatformatic = barePlatformaticRuns.sort((a, b) => a.eventsPerSec - b.eventsPerSec)[barePlatformaticRuns.length - 1] ?? null;
    const javaProducer = javaRuns.sort((a, b) => a.eventsPerSec - b.eventsPerSec)[javaRuns.length - 1] ?? null;
    log.info({ bare: bareBatched?.eventsPerSec, barePlatformatic: barePlatformatic?.eventsPerSec, java: javaProducer?.eventsPerSec }, 'ceilings');

    let worker: WorkerFigures | { skipped: string } = { skipped: 'not run (--only)' };
    if (stages.has('worker')) {
      log.info('worker: score-orders at-least-once and exactly-once vs a bare copy');
      const options: WorkerBenchOptions = { brokers: broker.brokers, registryUrl: registry.url, runId, mode: mode.name, config: registryConfig, logger: log };
      worker = await runWorkerBench(options);
      log.info('worker: exactly-once at 6 and 48 input partitions (events/s, broker connections)');
      worker.scale = await runWorkerScaleBench({ ...options, runId: `${runId}s` });
    }

    // Without the ingress stage there is no measured peak; 8000/s is about Sluice's on 2 cores.
    const peak = cells.find((c) => c.contender === 'sluice' && c.connections === 128 && c.eventsPerRequest === 1)?.eventsPerSec ?? 8000;
    log.info({ peak }, 'end-to-end latency');
    const e2e = stages.has('e2e') ? await runE2e(mode, envFor(base, 'e2e'), pool, peak, profile, log) : { low: null, halfPeak: null, note: 'not run (--only)' };

    log.info('serialization: avsc vs JSON');
    const serialization: SerializationFigures | null = stages.has('serialization') ? measureSerialization(pool.orders, schema.text, mode.serializationMs) : null;

    // Full mode only: the quick run stays on one broker.
    let replicated: ReplicatedFigures | null = null;
    if (mode.name === 'full' && stages.has('replicated')) {
      log.info('replicated: ingress and exactly-once worker on three brokers, RF 3 beside RF 1');
      replicated = await runReplicated({ httpDurationS: mode.httpDurationS, pool, runId, mode: mode.name, workerBench: runWorkerBench, log });
    }

    const partial = {
      version: 1 as const,
      mode: mode.name,
      startedAt: new Date(started).toISOString(),
      durationS: 0,
      machine: { ...machineFacts(config, broker), beforeRevision: cells.some((c) => c.contender === 'before') ? beforeRevision : null },
      ingress: { durationS: mode.httpDurationS, cells },
      bareBatched,
      barePlatformatic,
      javaProducer,
      worker,
      e2e,
      serialization,
      idempotency,
      readPath,
      compression,
      rules,
      ...(replicated ? { replicated } : {}),
      notes,
    };
    const ratios = computeRatios(partial);
    const results: BenchResults = { ...partial, ratios, goals: [] };
    results.goals = computeGoals(results);
    results.durationS = Math.round((Date.now() - started) / 1000);
    return results;
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await registry.close();
    await broker.stop();
  }
}

/** The must-show comparison: a running `npm start` against the naive service, same broker and registry, 64 connections. */
async function againstRunning(mode: Mode, config: SluiceConfig, log: Logger): Promise<void> {
  const ingressUrl = `${process.env.SLUICE_BENCH_INGRESS_URL ?? `http://${config.ingressHost}:${config.ingressPort}`}/v1/orders`;
  const brokers = config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
  const topic = 'orders.placed';
  const subject = `${topic}-value`;
  const naive = naiveChild({ brokers, registryUrl: config.registryUrl }, topic, subject);
  try {
    const urls = { sluice: ingressUrl, naive: await urlOf(naive) };
    const pool = eventPool();
    for (const contender of ['sluice', 'naive'] as const) {
      await loadHttp({ url: urls[contender], connections: 64, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1 });
    }
    const runs: Record<HttpContender, HttpFigures[]> = { sluice: [], naive: [], before: [] };
    for (let r = 0; r < Math.max(3, mode.rounds); r++) {
      for (const contender of (r % 2 === 0 ? ['sluice', 'naive'] : ['naive', 'sluice']) as ('sluice' | 'naive')[]) {
        const figures = await loadHttp({ url: urls[contender], connections: 64, durationS: Math.max(8, mode.httpDurationS), bodies: pool.singleBodies, eventsPerRequest: 1 });
        runs[contender].push(figures);
        log.info({ contender, eventsPerSec: figures.eventsPerSec, non2xx: figures.non2xx }, 'against running: 64 connections');
      }
    }
    const sluice = median(runs.sluice.map((f) => f.eventsPerSec));
    const naiveEps = median(runs.naive.map((f) => f.eventsPerSec));
    const report = {
      at: new Date().toISOString(),
      connections: 64,
      ingressUrl,
      brokers,
      sluiceEventsPerSec: sluice,
      naiveEventsPerSec: naiveEps,
      ratio: round(sluice / naiveEps),
      goal: '>= 3x',
      runs,
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(join(RESULTS_DIR, 'against-running.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`Sluice (npm start) ${sluice} events/s vs naive service ${naiveEps} events/s at 64 connections: ${report.ratio}x (goal >= 3x)\n`);
  } finally {
    await naive.stop();
  }
}

function printSummary(results: BenchResults, files: { json: string; svg: string }): void {
  const lines = [`Sluice bench (${results.mode}, ${results.durationS} s): ${files.json}, ${files.svg}`, 'Ratios:'];
  for (const [name, value] of Object.entries(results.ratios)) lines.push(`  ${name.padEnd(28)} ${value === null ? 'n/a' : `${value}x`}`);
  lines.push('Ingress (median of the rounds; CPU µs per event: own process / whole machine):');
  for (const c of results.ingress.cells) {
    lines.push(
      `  ${c.contender.padEnd(7)} ${c.eventsPerRequest === 1 ? 'single' : `batch ${c.eventsPerRequest}`} @${c.connections}: ${c.eventsPerSec} events/s, CPU ${c.cpuUsPerEvent ? `${c.cpuUsPerEvent.process} / ${c.cpuUsPerEvent.machine}` : 'n/a'} µs`,
    );
  }
  for (const row of results.compression ?? []) {
    lines.push(
      `Compression ${row.codec}: batches ${row.batchEventsPerSec} events/s (CPU ${row.batchCpuUsPerEvent?.process ?? 'n/a'} µs), single ${row.singleEventsPerSec} events/s (CPU ${row.singleCpuUsPerEvent?.process ?? 'n/a'} µs), ${row.bytesPerRecord ?? 'n/a'} B per record on the broker`,
    );
  }
  lines.push('Goals:');
  // Four significant digits: goals are judged on the exact figure, and the verdict stands beside it.
  for (const g of results.goals) lines.push(`  ${g.met === null ? 'n/a ' : g.met ? 'met ' : 'MISS'} ${g.name}: ${g.actual === null ? 'n/a' : Number(g.actual.toPrecision(4))} (goal ${g.target})`);
  for (const cell of results.replicated?.cells ?? []) {
    lines.push(
      `Three brokers, RF ${cell.replicationFactor} (min.insync ${cell.minInsyncReplicas}): ingress ${cell.ingressEventsPerSec} events/s (p99 ${cell.ingressP99Ms} ms), exactly-once worker ${cell.exactlyOnceEventsPerSec ?? 'n/a'} events/s`,
    );
  }
  for (const n of results.notes) lines.push(`Note: ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // SLUICE_BENCH_HTTP_S shortens each HTTP round, e.g. to check the bench's code; its figures then mean little.
  const chosen = args.includes('--full') ? FULL : QUICK;
  const mode = { ...chosen, httpDurationS: Number(process.env.SLUICE_BENCH_HTTP_S ?? chosen.httpDurationS) };
  const config = loadConfig(process.env, { logFormat: process.env.SLUICE_LOG_FORMAT ?? 'json' });
  const log = createLogger(config, 'bench', 2);
  if (args.includes('--against-running')) {
    await againstRunning(mode, config, log);
    return;
  }
  const beforeRevision = args.find((a) => a.startsWith('--before='))?.slice('--before='.length) ?? process.env.SLUICE_BENCH_BEFORE ?? DEFAULT_BEFORE;
  const results = await runAll(mode, args.includes('--cpu-prof'), stagesOf(args), config, log, beforeRevision);
  const files = writeResults(results, { dir: RESULTS_DIR, readmePath: args.includes('--no-readme') ? undefined : join(PROJECT_ROOT, 'README.md') });
  printSummary(results, files);
}

await main();
