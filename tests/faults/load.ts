import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ARRAYS, type ArrivalPhase, type GeneratorLag, type OpenLoopSummary, type PipelinedOptions } from './open-loop.ts';
import { randomOrder } from '../support/orders.ts';

/**
 * An HTTP load generator for the fault tests: a fixed number of POSTs of one
 * order each to the ingress on 127.0.0.1, at most `concurrency` at a time and,
 * when `ratePerSecond` is given, no faster than that. Every request's outcome
 * is kept, so a test can say which were accepted and how the rest were refused.
 */

export interface Outcome {
  orderId: string;
  /** HTTP status; 0 when no answer came (connection refused or reset, client timeout). */
  status: number;
  retryAfter: string | null;
  /** When the request started and how long it took, in ms since the run began. */
  startedMs: number;
  ms: number;
}

export interface LoadOptions {
  count: number;
  concurrency: number;
  ratePerSecond?: number;
  /** Client-side give-up per request; longer than the ingress's produce timeout. */
  timeoutMs?: number;
  /** Stops issuing new requests once it returns true (in-flight ones still finish). */
  stop?: () => boolean;
}

export interface LoadRun {
  outcomes: Outcome[];
  /** Requests issued so far (for triggering a fault mid-run). */
  issued(): number;
  /** Milliseconds since the run began, on the clock of Outcome.startedMs. */
  elapsedMs(): number;
  done: Promise<Outcome[]>;
}

export function postOrders(url: string, options: LoadOptions): LoadRun {
  const outcomes: Outcome[] = [];
  const began = performance.now();
  let next = 0;
  const one = async (): Promise<void> => {
    const order = randomOrder();
    const startedMs = performance.now() - began;
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(order),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
      await response.arrayBuffer();
      status = response.status;
      retryAfter = response.headers.get('retry-after');
    } catch {
      // No answer: status 0.
    }
    outcomes.push({ orderId: order.orderId, status, retryAfter, startedMs, ms: performance.now() - began - startedMs });
  };
  const lane = async (): Promise<void> => {
    while (next < options.count && !options.stop?.()) {
      const index = next++;
      if (options.ratePerSecond) {
        const due = (index / options.ratePerSecond) * 1000 - (performance.now() - began);
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      }
      await one();
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, lane)).then(() => outcomes);
  return { outcomes, issued: () => next, elapsedMs: () => performance.now() - began, done };
}

/** Accepted (2xx) and the rest by status. */
export function summarize(outcomes: readonly Outcome[]): { accepted: Outcome[]; refused: Outcome[]; byStatus: Record<number, number> } {
  const byStatus: Record<number, number> = {};
  for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  return { accepted: outcomes.filter((o) => o.status >= 200 && o.status < 300), refused: outcomes.filter((o) => o.status < 200 || o.status >= 300), byStatus };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface PhasedOutcome extends Outcome {
  phase: string;
  /** The open-loop generator's connection (its slot) the request went on. */
  connection?: number;
  /** Its index in the open-loop run (OpenLoopResult.aheadOf). */
  readonly index?: number;
}

/**
 * One request of an open-loop run. Its order id is made when asked for (the ledger asks for the accepted ones): a run
 * at twice a capacity of ~20,000/s is 12 million outcomes, and a string each took the test's heap past 3.4 GB (V8 ran
 * out of memory in CI).
 */
class SentOutcome implements PhasedOutcome {
  readonly #run: string;
  readonly #index: number;
  readonly phase: string;
  readonly status: number;
  readonly retryAfter: string | null;
  readonly startedMs: number;
  readonly ms: number;
  readonly connection: number;
  constructor(run: string, index: number, phase: string, status: number, retryAfter: string | null, startedMs: number, ms: number, connection: number) {
    this.#run = run;
    this.#index = index;
    this.phase = phase;
    this.status = status;
    this.retryAfter = retryAfter;
    this.startedMs = startedMs;
    this.ms = ms;
    this.connection = connection;
  }

  get orderId(): string {
    return `order-${this.#run}-${String(this.#index).padStart(12, '0')}`;
  }

  /** Its index in the run (OpenLoopResult.aheadOf): a getter, as a field more on 12 million outcomes costs the test's heap. */
  get index(): number {
    return this.#index;
  }
}

export interface OpenLoopResult {
  outcomes: PhasedOutcome[];
  /** Arrivals due per phase: every one is sent (the generator never sheds), on time or late (lag). */
  scheduled: Record<string, number>;
  lag: Record<string, GeneratorLag>;
  /** When each phase began, in ms since the run began (the clock of Outcome.startedMs). */
  phaseStartMs: Record<string, number>;
  /** By request index (SentOutcome.index): requests unanswered on its connection when it was written (at most 255). */
  aheadOf: Uint8Array;
}

/**
 * The ingress's own view of POST /v1/orders (sluice_http_request_duration_seconds on GET /metrics): cumulative
 * counts per bucket bound in seconds, summed over statuses. Two scrapes subtracted give one phase's distribution,
 * which tells time spent in the ingress from time spent before it read the request (sockets, the client).
 */
export async function ordersDurationBuckets(ingressUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${ingressUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('sluice_http_request_duration_seconds_bucket{') || !line.includes('route="/v1/orders"') || !line.includes('method="POST"')) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets;
}

/** Requests between two scrapes, and the smallest bucket bound (s) under which 99% of them were answered. */
export function durationBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): { requests: number; p99UnderS: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  const p99 = bounds.find((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0) >= total * 0.99) ?? Number.POSITIVE_INFINITY;
  return { requests: total, p99UnderS: p99 };
}

/**
 * Where the open-loop generator runs: the CPU its process is pinned to (taskset -c), SLUICE_FAULTS_GENERATOR_CPU, by
 * default the box's last; "none" runs it unpinned. The overload soak pins `sluice up` to the other CPUs, so the
 * generator's CPU is not taken from the ingress it measures.
 */
export function generatorCpu(): number | undefined {
  const setting = process.env.SLUICE_FAULTS_GENERATOR_CPU ?? String(availableParallelism() - 1);
  return setting === 'none' || availableParallelism() < 2 ? undefined : Number(setting);
}

/**
 * An open-loop load as cheap as a client can make it, so one process on a small box can offer several times what
 * the ingress takes (Node's http client with keep-alive, used before, offered at most 908/s here: it costs about as
 * much CPU per request as the ingress itself, and a closed-loop client at N in flight only queues). Raw TCP
 * connections with HTTP/1.1 pipelining, written on a fixed schedule (request n of a phase at n / rate seconds)
 * whatever the answers: truly open loop, every arrival is written when due, however many answers are outstanding (an
 * earlier version shed arrivals when all connections had 32 unanswered, and then bounded the offered rate itself).
 * It runs in a process of its own (tests/faults/open-loop.ts), pinned to generatorCpu(); what it could not write on
 * schedule (its own CPU, a late timer) is its lag, reported per phase with its CPU per request.
 */
export async function openLoopPipelined(url: string, phases: readonly ArrivalPhase[], options: PipelinedOptions): Promise<OpenLoopResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-open-loop-'));
  try {
    const file = join(dir, 'result');
    const cpu = generatorCpu();
    const node = [process.execPath, '--disable-warning=TimeoutNegativeWarning', join(import.meta.dirname, 'open-loop.ts'), url, JSON.stringify(phases), JSON.stringify(options), file];
    const [command, ...args] = cpu === undefined ? node : ['taskset', '-c', String(cpu), ...node];
    const child = spawn(command!, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((resolve, reject) => child.once('exit', resolve).once('error', reject));
    if (code !== 0) throw new Error(`the open-loop generator exited with ${code}`);
    const bytes = readFileSync(file);
    const length = bytes.readUInt32LE(0);
    const summary = JSON.parse(bytes.subarray(4, 4 + length).toString()) as OpenLoopSummary;
    let at = 4 + length;
    // Copied out of the file's bytes: a Float64Array needs its offset aligned.
    const arrays = Object.fromEntries(
      ARRAYS.map(([name, Kind]) => {
        const size = summary.total * Kind.BYTES_PER_ELEMENT;
        const array = new Kind(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + size));
        at += size;
        return [name, array];
      }),
    ) as Record<(typeof ARRAYS)[number][0], Uint16Array | Float64Array | Uint8Array>;
    const { status, retryAfter, startedMs, answeredMs, phaseOf, sent, laneOf, aheadOf } = arrays;
    const outcomes: PhasedOutcome[] = [];
    for (let i = 0; i < summary.total; i++) {
      if (sent[i] !== 1) continue;
      outcomes.push(
        new SentOutcome(summary.run, i, phases[phaseOf[i]!]!.name, status[i]!, retryAfter[i] === 0 ? null : String(retryAfter[i]), startedMs[i]!, answeredMs[i]! - startedMs[i]!, laneOf[i]!),
      );
    }
    return { outcomes, scheduled: summary.scheduled, lag: summary.lag, phaseStartMs: summary.phaseStartMs, aheadOf: aheadOf as Uint8Array };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Admission's gauges on GET /metrics (producers/ingress-metrics.ts admissionGauges), by name without the common prefix. */
export async function admissionState(ingressUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${ingressUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const state: Record<string, number> = {};
  for (const [, name, value] of text.matchAll(/^sluice_ingress_admission_(\w+) (\S+)$/gm)) state[name!] = value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value);
  // Refusals so far by rule (refused_limit, refused_sojourn, refused_cpu_gate).
  for (const [, rule, value] of text.matchAll(/^sluice_ingress_admission_refused_total\{rule="(\w+)"\} (\S+)$/gm)) state[`refused_${rule!}`] = Number(value);
  return state;
}

/** sluice_ingress_rejected_requests_total by code: refusals at admission (SLUICE_OVERLOADED) apart from those at the deadline. */
export async function rejectedByCode(ingressUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${ingressUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const counts: Record<string, number> = {};
  for (const [, code, value] of text.matchAll(/^sluice_ingress_rejected_requests_total\{code="([^"]+)"\} (\d+)/gm)) counts[code!] = Number(value);
  return counts;
}

/** Connections for an open-loop rate whose answers may take up to `latencyMs`: rate × latency requests outstanding, perConnection to each. */
export function connectionsFor(ratePerSecond: number, latencyMs: number, perConnection: number): number {
  return Math.min(2000, Math.max(100, Math.ceil((ratePerSecond * latencyMs) / 1000 / perConnection)));
}

/** One step of the capacity ramp: what it offered and what came back from the requests sent in its counted part. */
export interface RampStep {
  offeredPerS: number;
  acceptedPerS: number;
  refusedPerS: number;
  acceptedP99Ms: number;
  lateSends: number;
  /** The generator's CPU per request (its own process). */
  generatorUsPerRequest: number;
}

export interface RampOptions {
  startPerS: number;
  /** Each step's rate is the last one's times this. */
  factor: number;
  maxPerS: number;
  stepMs: number;
  /** The last part of each step that is counted (the ingress's admission settles in the first). */
  countedMs: number;
  /** Accepted answers slower than this at their 99th percentile end the ramp. */
  deadlineMs: number;
  perConnection: number;
}

/** The ramp so far: the best accepted rate counted, and how many saturated steps in a row ended it. */
export interface RampState {
  best: number;
  saturated: number;
}

/**
 * One step's verdict. Saturated: under 90% of what it offered. Counted as the best: accepted answers within the
 * deadline at p99 (a step past it took more than the ingress serves in time). A saturated step is repeated at its rate,
 * never doubled: the step before it took all it offered, so this one is at most about twice the capacity already, and
 * a doubling only added a burst at three or four times it that the soak's RSS then measured. V8 keeps the pages a
 * collection frees (memory-probe.ts v8PagesMb), so the RSS stays at the heap's peak: a 5-minute soak (2026-12-08)
 * whose probe went 8,000/s (all taken), 16,000/s (10,453 taken, still 30% above the best) and on to 32,000/s (3,056
 * taken, p99 10.9 s) began its overload at 849 MB, all but ~370 MB of its 650 MB of V8 pages pooled from that last
 * step. Stop at a second saturated step in a row that rose no more than 10% above the best before it (the capacity,
 * read twice), or a p99 past the deadline. Repeated, a warm-up dip still passes (the repeat takes what it offers).
 */
export function afterStep(state: RampState, step: Pick<RampStep, 'offeredPerS' | 'acceptedPerS' | 'acceptedP99Ms'>, deadlineMs: number): RampState & { next: 'double' | 'repeat' | 'stop' } {
  const rising = step.acceptedPerS > 1.1 * state.best;
  const best = step.acceptedP99Ms <= deadlineMs ? Math.max(state.best, step.acceptedPerS) : state.best;
  const saturated = step.acceptedPerS < 0.9 * step.offeredPerS ? state.saturated + 1 : 0;
  if (step.acceptedP99Ms > deadlineMs || (saturated >= 2 && !rising)) return { best, saturated, next: 'stop' };
  return { best, saturated, next: saturated > 0 ? 'repeat' : 'double' };
}

/**
 * The ingress's capacity: open-loop steps at rising rates (startPerS × factor^n) while each takes what it offers; a
 * step that does not is repeated at its rate until two in a row took under 90% of what they offered and the second no
 * more than 10% above the best step before it (on a loaded box one step refused half of 250/s while the ingress warmed
 * up and then took 763/s), the accepted p99 passes the deadline, or maxPerS is reached (afterStep). The capacity is the best accepted rate of any step answered within the
 * deadline at p99 (a step at 16,000/s accepted 11,114/s at p99 11 s, and twice that was then mostly refused late); the outcomes of
 * every step are returned for the ledger (what it accepted must come out too). A fixed probe rate
 * read either what it offered (a quiet box took all of 2,000/s) or what the generator could keep outstanding.
 */
export async function probeCapacity(url: string, options: RampOptions): Promise<{ capacityPerS: number; steps: RampStep[]; outcomes: PhasedOutcome[] }> {
  const steps: RampStep[] = [];
  const all: PhasedOutcome[] = [];
  let state: RampState = { best: 0, saturated: 0 };
  for (let rate = options.startPerS; rate <= options.maxPerS;) {
    const connections = connectionsFor(rate, 1000, options.perConnection);
    const { outcomes, lag } = await openLoopPipelined(url, [{ name: 'step', ratePerSecond: rate, durationMs: options.stepMs }], {
      connections,
      perConnection: options.perConnection,
      timeoutMs: 60_000,
    });
    for (const o of outcomes) all.push(o);
    const counted = outcomes.filter((o) => o.startedMs >= options.stepMs - options.countedMs);
    const { accepted, refused } = summarize(counted);
    const step: RampStep = {
      offeredPerS: rate,
      acceptedPerS: Math.round((accepted.length * 1000) / options.countedMs),
      refusedPerS: Math.round((refused.length * 1000) / options.countedMs),
      acceptedP99Ms: Math.round(
        percentile(
          accepted.map((o) => o.ms),
          99,
        ),
      ),
      lateSends: lag.step!.lateSends,
      generatorUsPerRequest: lag.step!.cpuPerRequestUs,
    };
    steps.push(step);
    const verdict = afterStep(state, step, options.deadlineMs);
    state = verdict;
    if (verdict.next === 'stop') break;
    if (verdict.next === 'double') rate = Math.round(rate * options.factor);
  }
  return { capacityPerS: Math.max(50, state.best), steps, outcomes: all };
}
