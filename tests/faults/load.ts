import { randomUUID } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
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

/** One stretch of an open-loop run: arrivals at a fixed rate for a while. */
export interface ArrivalPhase {
  name: string;
  ratePerSecond: number;
  durationMs: number;
}

export interface PhasedOutcome extends Outcome {
  phase: string;
}

/** How far the generator itself fell behind its schedule in one phase. */
export interface GeneratorLag {
  /** The latest any request was written after its arrival time (ms): the client's own CPU or event loop, not the server. */
  maxLateMs: number;
  /** Requests written more than LATE_MS after their arrival time. */
  lateSends: number;
  /** Requests written to a connection that already had `perConnection` unanswered (the server reads them when it can). */
  beyondPipelined: number;
  /** The most request bytes accepted by the client's sockets and not yet taken by the kernel (the server not reading). */
  maxUnwrittenKb: number;
}

export interface OpenLoopResult {
  outcomes: PhasedOutcome[];
  /** Arrivals due per phase: every one is sent (the generator never sheds), on time or late (lag). */
  scheduled: Record<string, number>;
  lag: Record<string, GeneratorLag>;
  /** When each phase began, in ms since the run began (the clock of Outcome.startedMs). */
  phaseStartMs: Record<string, number>;
}

/** A request written this much after its arrival time counts as a late send of the generator. */
export const LATE_MS = 100;

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

/** A socket of the pipelined generator: requests written and not yet answered, in order (HTTP/1.1 answers in order). */
interface Lane {
  socket: Socket;
  /** Request indexes awaiting their answers, from `head` on. */
  waiting: number[];
  head: number;
  /** Bytes of an answer not yet complete. */
  rest: string;
  alive: boolean;
}

export interface PipelinedOptions {
  /**
   * Connections opened before any load, requests dealt to them in turn. `perConnection` only counts the requests
   * written beyond it (the server's pipelining bound, SLUICE_HTTP_MAX_PIPELINED): size `connections` so that the rate
   * times the answers' latency fits in connections × perConnection.
   */
  connections: number;
  perConnection: number;
  /** A connection whose oldest request has waited this long is closed; its requests count as unanswered (status 0). */
  timeoutMs: number;
}

/**
 * An open-loop load as cheap as a client can make it, so one process on a small box can offer several times what
 * the ingress takes (Node's http client with keep-alive, used before, offered at most 908/s here: it costs about as
 * much CPU per request as the ingress itself, and a closed-loop client at N in flight only queues). Raw TCP
 * connections with HTTP/1.1 pipelining, each request's bytes copied from a template built once (the order id's digits
 * written in place), written on a fixed schedule (request n of a phase at n / rate seconds) whatever the answers, and
 * answers counted by scanning their status lines and Content-Length. Truly open loop: every arrival is written when
 * due, to the next connection in turn, however many answers are outstanding (an earlier version skipped connections
 * with 32 unanswered and shed the arrival when all had: 100 connections then bounded the offered rate at 3,200
 * outstanding, not the server). What the client could not write on schedule (its own CPU, a late timer) is its lag,
 * reported per phase beside what the server did not read. Outcomes are kept in typed arrays during the run (no object
 * per request while it matters) and returned as openLoop's when it is over.
 */
export async function openLoopPipelined(url: string, phases: readonly ArrivalPhase[], options: PipelinedOptions): Promise<OpenLoopResult> {
  const target = new URL(url);
  const port = Number(target.port);
  const total = phases.reduce((sum, p) => sum + Math.floor((p.durationMs * p.ratePerSecond) / 1000), 0);
  const status = new Uint16Array(total);
  /** Retry-After in seconds; 0 when the answer had none. */
  const retryAfter = new Uint16Array(total);
  const startedMs = new Float64Array(total);
  const answeredMs = new Float64Array(total);
  const phaseOf = new Uint8Array(total);
  const sent = new Uint8Array(total);
  // Order ids `order-<run>-<12 digits>`: fixed width, so the digits are written into a copy of a template.
  const run = randomUUID().slice(0, 8);
  const templates = Array.from({ length: 16 }, () => {
    const body = JSON.stringify(randomOrder({ orderId: `order-${run}-${'0'.repeat(12)}` }));
    const text = `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const bytes = Buffer.from(text, 'latin1');
    return { bytes, digitsAt: text.indexOf(`order-${run}-`) + `order-${run}-`.length };
  });
  const orderId = (i: number): string => `order-${run}-${String(i).padStart(12, '0')}`;

  const began = performance.now();
  const finish = (lane: Lane, code: number, retry: number): void => {
    const i = lane.waiting[lane.head++]!;
    status[i] = code;
    retryAfter[i] = retry;
    answeredMs[i] = performance.now() - began;
    if (lane.head === lane.waiting.length) {
      lane.waiting.length = 0;
      lane.head = 0;
    }
  };
  const open = (): Promise<Lane> =>
    new Promise((resolve) => {
      const lane: Lane = { socket: createConnection({ port, host: target.hostname, noDelay: true }), waiting: [], head: 0, rest: '', alive: true };
      lane.socket.on('connect', () => resolve(lane));
      lane.socket.on('data', (chunk: Buffer) => {
        let text = lane.rest + chunk.toString('latin1');
        for (;;) {
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) break;
          const head = text.slice(0, end);
          const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? '0');
          if (text.length < end + 4 + length) break;
          if (lane.head < lane.waiting.length) finish(lane, Number(head.slice(9, 12)), Number(/retry-after: *(\d+)/i.exec(head)?.[1] ?? '0'));
          text = text.slice(end + 4 + length);
        }
        lane.rest = text;
      });
      const fail = (): void => {
        if (!lane.alive) return;
        lane.alive = false;
        while (lane.head < lane.waiting.length) finish(lane, 0, 0);
        resolve(lane);
      };
      lane.socket.on('error', fail);
      lane.socket.on('close', fail);
    });
  // Opened a hundred at a time before any load, while the server is idle: opened in a burst when the answers slow down,
  // they overflow the listen queue of a busy server (Node's default backlog is 511), whose dropped SYNs the kernel
  // resends after 1, 3, 7, 15 and 31 s, and the run then measures TCP's back-off instead of the ingress.
  const lanes: Lane[] = [];
  for (let opened = 0; opened < options.connections; opened += 100) lanes.push(...(await Promise.all(Array.from({ length: Math.min(100, options.connections - opened) }, open))));

  const result: OpenLoopResult = { outcomes: [], scheduled: {}, lag: {}, phaseStartMs: {} };
  for (const p of phases) result.lag[p.name] = { maxLateMs: 0, lateSends: 0, beyondPipelined: 0, maxUnwrittenKb: 0 };
  let next = 0;
  let turn = 0;
  /** Sends requests next..next+count-1 of `phase`: per lane one write of the copied templates. */
  const send = (phase: number, count: number): void => {
    const lag = result.lag[phases[phase]!.name]!;
    const perLane = new Map<Lane, number[]>();
    for (let k = 0; k < count; k++, next++) {
      phaseOf[next] = phase;
      // The next live connection in turn (a dead one is being replaced by expire()).
      let lane = lanes[turn++ % lanes.length]!;
      for (let tried = 0; !lane.alive && tried < lanes.length; tried++) lane = lanes[turn++ % lanes.length]!;
      const list = perLane.get(lane) ?? [];
      if (lane.waiting.length - lane.head + list.length >= options.perConnection) lag.beyondPipelined += 1;
      list.push(next);
      perLane.set(lane, list);
    }
    const now = performance.now() - began;
    for (const [lane, indexes] of perLane) {
      const size = indexes.reduce((sum, i) => sum + templates[i % templates.length]!.bytes.length, 0);
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (const i of indexes) {
        const template = templates[i % templates.length]!;
        template.bytes.copy(out, at);
        out.write(String(i).padStart(12, '0'), at + template.digitsAt, 'latin1');
        at += template.bytes.length;
        startedMs[i] = now;
        sent[i] = 1;
        lane.waiting.push(i);
      }
      lane.socket.write(out);
    }
    let unwritten = 0;
    for (const lane of lanes) unwritten += lane.socket.writableLength;
    lag.maxUnwrittenKb = Math.max(lag.maxUnwrittenKb, Math.round(unwritten / 1024));
  };
  /** Connections whose oldest request waited past the timeout are closed and replaced. */
  const expire = async (): Promise<void> => {
    const now = performance.now() - began;
    for (let k = 0; k < lanes.length; k++) {
      const lane = lanes[k]!;
      if (lane.alive && lane.head < lane.waiting.length && now - startedMs[lane.waiting[lane.head]!]! > options.timeoutMs) lane.socket.destroy();
      if (!lane.alive) lanes[k] = await open();
    }
  };

  await new Promise<void>((resolve) => {
    let index = 0;
    let phaseBegan = 0;
    let issued = 0;
    let expiring = false;
    result.phaseStartMs[phases[0]!.name] = 0;
    const timer = setInterval(() => {
      if (!expiring) {
        expiring = true;
        void expire().finally(() => (expiring = false));
      }
      const now = performance.now() - began;
      for (let phase = phases[index]; phase !== undefined; phase = phases[index]) {
        const due = Math.floor((Math.min(now - phaseBegan, phase.durationMs) * phase.ratePerSecond) / 1000);
        if (due > issued) {
          // Arrival k of the phase is due at k / rate: how late the first of these is, and how many are later than LATE_MS.
          const lag = result.lag[phase.name]!;
          lag.maxLateMs = Math.max(lag.maxLateMs, Math.round(now - phaseBegan - (issued * 1000) / phase.ratePerSecond));
          const lateBy = Math.floor((Math.min(now - phaseBegan - LATE_MS, phase.durationMs) * phase.ratePerSecond) / 1000);
          lag.lateSends += Math.max(0, Math.min(due, lateBy) - issued);
          result.scheduled[phase.name] = (result.scheduled[phase.name] ?? 0) + due - issued;
        }
        send(index, due - issued);
        issued = due;
        if (now - phaseBegan < phase.durationMs) return;
        phaseBegan += phase.durationMs;
        issued = 0;
        index += 1;
        if (phases[index]) result.phaseStartMs[phases[index]!.name] = phaseBegan;
      }
      clearInterval(timer);
      const drained = setInterval(() => {
        void expire();
        if (lanes.some((lane) => lane.alive && lane.head < lane.waiting.length)) return;
        clearInterval(drained);
        resolve();
      }, 20);
    }, 5);
  });
  for (const lane of lanes) lane.socket.destroy();
  for (let i = 0; i < total; i++) {
    if (sent[i] !== 1) continue;
    result.outcomes.push({
      orderId: orderId(i),
      phase: phases[phaseOf[i]!]!.name,
      status: status[i]!,
      retryAfter: retryAfter[i] === 0 ? null : String(retryAfter[i]),
      startedMs: startedMs[i]!,
      ms: answeredMs[i]! - startedMs[i]!,
    });
  }
  return result;
}

/** Admission's gauges on GET /metrics (producers/ingress-metrics.ts admissionGauges), by name without the common prefix. */
export async function admissionState(ingressUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${ingressUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const state: Record<string, number> = {};
  for (const [, name, value] of text.matchAll(/^sluice_ingress_admission_(\w+) (\S+)$/gm)) state[name!] = value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value);
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

/**
 * The ingress's capacity: open-loop steps at rising rates (startPerS × factor^n) until the accepted rate stops rising
 * (two steps in a row took under 90% of what they offered and no more than 10% above the best step before them: on a
 * loaded box one step refused half of 250/s while the ingress warmed up and then took 763/s), the accepted p99 passes
 * the deadline, or maxPerS is reached. The capacity is the best accepted rate of any step answered within the
 * deadline at p99 (a step at 16,000/s accepted 11,114/s at p99 11 s, and twice that was then mostly refused late); the outcomes of
 * every step are returned for the ledger (what it accepted must come out too). A fixed probe rate
 * read either what it offered (a quiet box took all of 2,000/s) or what the generator could keep outstanding.
 */
export async function probeCapacity(url: string, options: RampOptions): Promise<{ capacityPerS: number; steps: RampStep[]; outcomes: PhasedOutcome[] }> {
  const steps: RampStep[] = [];
  const all: PhasedOutcome[] = [];
  let best = 0;
  let flat = 0;
  for (let rate = options.startPerS; rate <= options.maxPerS; rate = Math.round(rate * options.factor)) {
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
    };
    steps.push(step);
    const rising = step.acceptedPerS > 1.1 * best;
    // A step whose accepted answers came past the deadline took more than the ingress can serve in time: not its capacity.
    if (step.acceptedP99Ms <= options.deadlineMs) best = Math.max(best, step.acceptedPerS);
    flat = step.acceptedPerS < 0.9 * rate && !rising ? flat + 1 : 0;
    if (step.acceptedP99Ms > options.deadlineMs || flat === 2) break;
  }
  return { capacityPerS: Math.max(50, best), steps, outcomes: all };
}
