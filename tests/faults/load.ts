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
