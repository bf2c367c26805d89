import { Agent, request as httpRequest } from 'node:http';
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

export interface OpenLoopResult {
  outcomes: PhasedOutcome[];
  /** Arrivals due per phase, and those not sent because `maxOutstanding` requests were already waiting (the client's cap). */
  scheduled: Record<string, number>;
  shed: Record<string, number>;
  /** When each phase began, in ms since the run began (the clock of Outcome.startedMs). */
  phaseStartMs: Record<string, number>;
}

/**
 * An open-loop load: POSTs of one order each, sent on a fixed schedule (request n of a phase at n / rate seconds)
 * whether or not earlier ones were answered, so a slow or refusing server meets the offered rate instead of slowing
 * the client down (a closed-loop client at N in flight only queues). Sockets are capped at `maxOutstanding`: an
 * arrival due while that many requests wait is counted as shed and not sent, which keeps the client bounded when
 * the server stops answering. Node's http client with keep-alive: fetch costs the shared CPU several times more per
 * request. Resolves when the last phase is over and every request sent has its answer (or its client timeout).
 * The sockets are opened before any load (openSockets), a hundred at a time: opened in a burst when the answers slow
 * down, they overflow the listen queue of a busy server (Node's default backlog is 511), whose dropped SYNs the
 * kernel resends after 1, 3, 7, 15 and 31 s, and the run then measures TCP's back-off instead of the ingress.
 */
export function openLoop(url: string, phases: readonly ArrivalPhase[], options: { sockets: OpenSockets; timeoutMs: number }): Promise<OpenLoopResult> {
  const target = new URL(url);
  const { agent, count: maxOutstanding } = options.sockets;
  const result: OpenLoopResult = { outcomes: [], scheduled: {}, shed: {}, phaseStartMs: {} };
  const began = performance.now();
  let outstanding = 0;
  const post = (phase: string): void => {
    const order = randomOrder();
    const body = JSON.stringify(order);
    const startedMs = performance.now() - began;
    outstanding += 1;
    let answered = false;
    const answer = (status: number, retryAfter: string | null): void => {
      if (answered) return;
      answered = true;
      outstanding -= 1;
      result.outcomes.push({ orderId: order.orderId, phase, status, retryAfter, startedMs, ms: performance.now() - began - startedMs });
    };
    const req = httpRequest(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        timeout: options.timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const retryAfter = res.headers['retry-after'];
        res.resume();
        res.on('end', () => answer(res.statusCode ?? 0, typeof retryAfter === 'string' ? retryAfter : null));
        res.on('error', () => answer(0, null));
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', () => answer(0, null));
    req.end(body);
  };
  return new Promise<OpenLoopResult>((resolve) => {
    let index = 0;
    let phaseBegan = 0;
    let issued = 0;
    const issueUpTo = (phase: ArrivalPhase, due: number): void => {
      for (; issued < due; issued++) {
        result.scheduled[phase.name] = (result.scheduled[phase.name] ?? 0) + 1;
        if (outstanding >= maxOutstanding) result.shed[phase.name] = (result.shed[phase.name] ?? 0) + 1;
        else post(phase.name);
      }
    };
    result.phaseStartMs[phases[0]!.name] = 0;
    const timer = setInterval(() => {
      const now = performance.now() - began;
      for (let phase = phases[index]; phase !== undefined; phase = phases[index]) {
        if (now - phaseBegan < phase.durationMs) {
          issueUpTo(phase, Math.floor(((now - phaseBegan) * phase.ratePerSecond) / 1000));
          return;
        }
        // The phase is over: its last arrivals, then the next phase from its scheduled start.
        issueUpTo(phase, Math.floor((phase.durationMs * phase.ratePerSecond) / 1000));
        phaseBegan += phase.durationMs;
        issued = 0;
        index += 1;
        if (phases[index]) result.phaseStartMs[phases[index]!.name] = phaseBegan;
      }
      clearInterval(timer);
      const drained = setInterval(() => {
        if (outstanding > 0) return;
        clearInterval(drained);
        resolve(result);
      }, 20);
    }, 5);
  });
}

/** An open-loop client's keep-alive sockets: at most `count` requests outstanding; close() when the run is over. */
export interface OpenSockets {
  agent: Agent;
  count: number;
  close(): void;
}

/**
 * Opens `count` keep-alive sockets to `url`'s server (a cheap GET each), `step` at a time, and leaves them free for
 * openLoop: before any load, so the server accepts them while it is idle (see openLoop on the listen queue).
 */
export async function openSockets(url: string, count: number, step = 100): Promise<OpenSockets> {
  const target = new URL('/healthz', url);
  const agent = new Agent({ keepAlive: true, maxSockets: count, maxFreeSockets: count });
  const get = (): Promise<void> =>
    new Promise((resolve) => {
      const req = httpRequest({ agent, host: target.hostname, port: target.port, path: target.pathname, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve());
      req.end();
    });
  for (let opened = 0; opened < count; opened += step) await Promise.all(Array.from({ length: Math.min(step, count - opened) }, get));
  return { agent, count, close: () => agent.destroy() };
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
