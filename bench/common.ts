import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { crc32 } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { createKafka, type KafkaAdmin } from '../kafka/index.ts';
import { createTypes, encodeAvro } from '../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT, type SluiceConfig } from '../core/config.ts';
import { frame } from '../core/wire-format.ts';
import { loadTopology } from '../topology/load.ts';
import type { Topology } from '../topology/model.ts';
import { randomOrder, type OrderPlacedInput } from '../tests/support/orders.ts';

/**
 * What every benchmark shares: one broker, one schema, one pool of event bodies,
 * and child processes for the contenders so a server never shares its event loop
 * with the load generator.
 */

export const ORDERS_SUBJECT_SUFFIX = '-value';
export const BATCH_SIZE = 100;

export interface BenchEnv {
  brokers: string[];
  registryUrl: string;
  /** The run's id: topics and the registry topic carry it, so runs never mix. */
  runId: string;
  /** Topic the HTTP contenders and the bare producers write to. */
  inputTopic: string;
  /** Topic score-orders writes to in the end-to-end run. */
  outputTopic: string;
  deadLetterTopic: string;
  partitions: number;
}

export function benchConfig(env: BenchEnv, overrides: Record<string, string> = {}): SluiceConfig {
  return loadConfig(process.env, {
    kafkaBrokers: env.brokers.join(','),
    registryUrl: env.registryUrl,
    // This run's own, as the registry topic: a reused broker would otherwise hand every run's ingress all earlier runs' keys to read.
    idempotencyTopic: `_sluice_idempotency_bench_${env.runId}`,
    logLevel: 'warn',
    logFormat: 'json',
    ...overrides,
  });
}

/** The real topology, with its topics renamed to this run's, so the bench never writes to a live orders.placed. */
export function benchTopology(env: BenchEnv): Topology {
  const topology = loadTopology(`${PROJECT_ROOT}/topology/sluice.topology.yaml`);
  const rename: Record<string, string> = {
    'orders.placed': env.inputTopic,
    'orders.scored': env.outputTopic,
    'orders.placed.dlq': env.deadLetterTopic,
  };
  const renamed = (name: string): string => rename[name] ?? name;
  return {
    ...topology,
    name: `bench-${env.runId}`,
    topics: topology.topics
      .filter((t) => rename[t.name] !== undefined)
      .map((t) => ({
        ...t,
        name: renamed(t.name),
        partitions: env.partitions,
        ...(t.valueSchema ? { valueSchema: { ...t.valueSchema, subject: `${renamed(t.name)}${ORDERS_SUBJECT_SUFFIX}` } } : {}),
      })),
    routes: topology.routes.map((r) => ({ ...r, topic: renamed(r.topic) })),
    workers: topology.workers.map((w) => ({ ...w, input: renamed(w.input), output: renamed(w.output), deadLetter: renamed(w.deadLetter), groupId: `bench-${env.runId}-${w.name}` })),
  };
}

export function newRunId(): string {
  return randomUUID().slice(0, 8);
}

export function rawKafka(brokers: string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.ERROR });
}

/**
 * The harness's own admin is Sluice's (kafka/): kafkajs's createTopics, waiting for leaders, gives up on
 * UNKNOWN_TOPIC_OR_PARTITION while a Kafka 4 broker still creates partitions, which ended bench runs.
 */
export async function withAdmin<T>(brokers: string[], fn: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
  const admin = createKafka(loadConfig({}, { kafkaBrokers: brokers.join(','), logLevel: 'silent' }), pino({ level: 'silent' }), 'sluice-bench').admin();
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

export interface EventPool {
  orders: OrderPlacedInput[];
  /** One JSON body per order. */
  singleBodies: string[];
  /** JSON arrays of BATCH_SIZE orders. */
  batchBodies: string[];
  /** Each order Avro-encoded in the Confluent wire format (schema id 1: only the size matters to the bare producers). */
  encoded: Buffer[];
  averageRecordBytes: number;
}

/** Deterministic enough for comparisons: every contender gets the same bodies in the same order. */
export function eventPool(size = 2000): EventPool {
  const orders = Array.from({ length: size }, (_, i) => randomOrder({ orderId: `bench-${i}-${randomUUID().slice(0, 8)}` }));
  const singleBodies = orders.map((o) => JSON.stringify(o));
  const batchBodies: string[] = [];
  for (let i = 0; i + BATCH_SIZE <= orders.length; i += BATCH_SIZE) batchBodies.push(JSON.stringify(orders.slice(i, i + BATCH_SIZE)));
  return { orders, singleBodies, batchBodies, encoded: [], averageRecordBytes: 0 };
}

export async function encodePool(pool: EventPool, schemaText: string, schemaId: number): Promise<void> {
  const types = createTypes(schemaText);
  pool.encoded = pool.orders.map((o) => frame(schemaId, encodeAvro(types, o)));
  pool.averageRecordBytes = Math.round(pool.encoded.reduce((s, b) => s + b.length, 0) / pool.encoded.length);
}

/** Marks the one stdout line a child announces itself with; its logs may share stdout. */
export const READY_MARKER = '@@sluice-bench ';

export function announceReady(message: unknown): void {
  process.stdout.write(`${READY_MARKER}${JSON.stringify(message)}\n`);
}

export interface Child {
  process: ChildProcess;
  /** The first JSON line the child printed on stdout (its "ready" message). */
  ready: Promise<Record<string, unknown>>;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Runs a bench module as its own process on the project's Node. The child
 * announces readiness with one marked JSON line on stdout; anything else it prints
 * goes to the parent's stderr so failures are visible.
 */
export function spawnBench(file: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = [], root = PROJECT_ROOT): Child {
  const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', ...nodeArgs, `${root}/bench/${file}`, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    let seen = false;
    lines.on('line', (line) => {
      if (seen || !line.startsWith(READY_MARKER)) {
        process.stderr.write(`[${file}] ${line}\n`);
        return;
      }
      seen = true;
      try {
        resolve(JSON.parse(line.slice(READY_MARKER.length)) as Record<string, unknown>);
      } catch (error) {
        reject(error);
      }
    });
    void exited.then((code) => {
      if (!seen) reject(new Error(`bench/${file} exited with ${code} before it was ready:\n${stderr}`));
    });
  });
  return {
    process: child,
    ready,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** For a child: announce readiness to the parent, and stop cleanly on SIGTERM. */
export function announce(message: Record<string, unknown>, onStop: () => Promise<void>): void {
  announceReady(message);
  const stop = (): void => {
    onStop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stop failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (bench children are started by bench/run.ts)`);
  return value;
}

/**
 * NDJSON lines counted and hashed as they arrive, in chunks split anywhere: one crc32 per line (native), summed, so
 * two readers printing the same lines in another order across partitions (how fetches split them) hash the same. An
 * md5 object per line, then a hash loop over every byte in JS, took a harness more CPU than the reader it measured.
 */
export class LineDigest {
  lines = 0;
  #sum = 0;
  #rest = Buffer.alloc(0);

  add(chunk: Buffer): void {
    const data = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    let start = 0;
    for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, start)) {
      this.#sum = (this.#sum + crc32(data.subarray(start, i))) % 2 ** 48;
      this.lines++;
      start = i + 1;
    }
    this.#rest = Buffer.from(data.subarray(start));
  }

  get hash(): string {
    return this.#sum.toString(16);
  }
}

/**
 * An A/B's rounds: every contender once a round, the first (the reference, e.g. kcat) always first and the others'
 * order reversed every other round, so neither side always runs right after it; each round printed as one line.
 */
export async function alternateRounds<R>(contenders: readonly [string, () => Promise<R>][], rounds: number, describe: (r: R) => string, out: (line: string) => void): Promise<Map<string, R[]>> {
  const runs = new Map<string, R[]>(contenders.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [contenders[0]!, ...contenders.slice(1).reverse()];
    const line: string[] = [];
    for (const [name, run] of order) {
      const r = await run();
      runs.get(name)!.push(r);
      line.push(`${name} ${describe(r)}`);
    }
    out(`round ${round + 1}: ${line.join(' | ')}`);
  }
  return runs;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const round = (n: number, digits = 2): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

/** CPU seconds (user + system) a process has used so far, from /proc; undefined off Linux or when there is no such process. */
export function processCpuSeconds(pid: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th, in USER_HZ (100 on every Linux Node runs on).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by one process and by the whole machine (every core, busy time only); undefined off Linux. */
export function cpuSeconds(pid: number | undefined): { process: number; machine: number } | undefined {
  const own = pid === undefined ? undefined : processCpuSeconds(pid);
  if (own === undefined) return undefined;
  try {
    // The first line of /proc/stat, in USER_HZ: user nice system idle iowait irq softirq steal ...
    const all = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busy = all[0]! + all[1]! + all[2]! + all[5]! + all[6]!;
    return { process: own, machine: busy / 100 };
  } catch {
    return undefined;
  }
}

/**
 * CPU microseconds per event of one process and of the whole machine between two cpuSeconds() readings, to `digits`
 * decimals (whole µs unless asked: at ~10 µs per event a whole µs is 10%, too coarse for a ratio); null off Linux.
 */
export function cpuUsPerEvent(before: ReturnType<typeof cpuSeconds>, after: ReturnType<typeof cpuSeconds>, events: number, digits = 0): { process: number; machine: number } | null {
  if (!before || !after || !(events > 0)) return null;
  return { process: round(((after.process - before.process) * 1e6) / events, digits), machine: round(((after.machine - before.machine) * 1e6) / events, digits) };
}
