import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { coalesceWrites, headLines, writeHeadWith } from '../access/http.ts';
import { OverloadedError } from '../core/errors.ts';
import { CORRELATION_ID_HEADER, correlationIdOf } from './correlation.ts';
import { errorBody, OVERLOADED_RETRY_AFTER_S } from './ingress-errors.ts';

/**
 * Admission by the produce queue's expected wait. A request admitted behind more records than Kafka drains within
 * the budget would be answered 503 at the produce deadline anyway, after it had cost the ingress a whole request
 * (routing, body parse, validation, encoding) and possibly been written all the same (a 503 at the deadline cannot
 * withdraw a record the producer already holds). So the ingress refuses it at once, before Fastify reads it: the
 * refusal costs a few µs, and under a sustained overload the CPU goes to the requests that can still make it.
 *
 * The drain rate is measured only while the producer had records the whole time (otherwise it shows the arrivals,
 * not what Kafka can take). It cannot confirm itself low: it never falls below a floor, and while the ingress
 * refuses and the producer runs dry it doubles each interval, so after an outage it is back within seconds.
 *
 * The drain rate measured cannot tell Kafka's pace from admission's own: with the limit below what Kafka would take,
 * fewer records are sent per round trip, each interval measures less and the limit follows it down (100/s offered in a
 * 5-minute soak, on a box where the ingress took 750/s). So an interval that refused while the oldest waiting request
 * had waited less than half the budget raises the estimate by a quarter instead: the queue was not what made requests
 * late.
 *
 * The count is an expectation; what the oldest request still waiting for Kafka has already waited is a measurement
 * (CoDel's sojourn time). A request is refused as well while that wait is past the same budget: the queue is then
 * slower than the estimate says (a drain rate that fell within the interval, an estimate raised by the rule above,
 * acknowledgements read late by a busy loop), and a request admitted behind it would wait as long. The whole budget,
 * not less the loop's delay as the limit is: the wait measured already holds that delay (a late loop reads the
 * acknowledgements late), and taking it off again made a late loop refuse nearly everything while the refusals kept it
 * late (a CI soak at 32,000/s: 30,323/s refused by this rule, 1,557/s accepted, the loop 651 ms late).
 * Without it, an accepted request's wait was bounded only by the estimate: 863 ms median and 3.2 s at p99 (client
 * side) in a 5-minute soak at twice the capacity, where every accepted answer also holds the refusals pipelined behind
 * it on its connection (HTTP/1.1 answers in order) and so the memory they take. Only while the queue's limit is
 * refusing (it refused in the last interval; the rule's own refusals do not keep it on, or one late stretch kept it
 * refusing for as long as it refused): a short queue behind a leader election waits for the new leader within
 * the deadline, as before; refusing it after the budget refused every client of the fault suite's leader kill once a
 * second of a 6 s failover (74 refusals where the requests in flight, 64, may fail).
 *
 * When the ingress's own CPU is the bottleneck, requests wait in the sockets before the event loop reads them, a
 * wait the queue does not show; the loop's delay (how late the sampling timer fires) is that wait, and is taken off
 * the budget: a saturated loop refuses more, cheaply. Never more than MAX_LAG_SHARE of it: a box busy with other
 * processes delays the loop too, refusing does not help that, and with no budget left the ingress admitted a request
 * only into an empty queue (one batch at a time: 82/s where it took 750/s).
 *
 * That is not enough when Kafka drains fast: the queue stays short and the loop, reading ever more requests, falls
 * further behind. The CPU gate is CoDel's rule on the loop: when it has been busy throughout (utilization ≥
 * SATURATED_UTILIZATION) and late by more than LAG_TARGET_SHARE of the budget for every sample of a whole
 * SATURATED_SAMPLES intervals, the ingress admits at most CPU_CUT of the produce requests it admitted in the last
 * interval per second, and again less each further interval, down to CPU_FLOOR_SHARE of the most it admitted in an
 * interval of the last few seconds, or to the floor it closed with before if it opened less than FLOOR_MEMORY_SAMPLES
 * ago (refusals cost CPU too: when they alone keep the loop saturated, cutting further
 * only starved the accepted, 180/s of 8,000/s offered where 2,680/s were taken at 4,000/s; and the rate of the
 * interval it closed in may already be the queue limit's refusals); once the loop has idle time again, the
 * rate grows by CPU_GROWTH per interval and the gate opens when it is twice what is admitted. A brief stall (a GC, a leader move)
 * never fills an interval and refuses nothing; a box busy with other processes delays the loop but leaves it idle,
 * so it does not close the gate either.
 */

/** Records per second the estimate never falls below: after an outage the backlog it admits is what probes Kafka. */
export const DRAIN_FLOOR_PER_S = 50;
/** How often the drain rate is sampled: short enough to follow a leader move, long enough to span several sends. */
export const SAMPLE_MS = 250;
/** The most of the budget the event loop's delay may take. */
const MAX_LAG_SHARE = 0.75;
/**
 * Weight of the newest sample in the estimate: a stall of Kafka (a leader move, a slow fsync on a busy box) of half
 * a second takes it down by ~44%, not 75% (at 0.5, half-rate load was refused during such stalls).
 */
const SAMPLE_WEIGHT = 0.25;

/** `value` smoothed into `previous` with SAMPLE_WEIGHT (the first sample as it is): the estimate, the drain measured, the loop's delay. */
function smooth(previous: number | undefined, value: number): number {
  return previous === undefined ? value : previous * (1 - SAMPLE_WEIGHT) + value * SAMPLE_WEIGHT;
}
/** An interval that refused while the oldest waiting request had waited under this share of the budget raises the estimate. */
const FAST_QUEUE_SHARE = 0.5;
/** How much such an interval raises it. */
const FAST_QUEUE_RAISE = 1.25;
/**
 * While the limit refuses and the producer never runs dry (a standing queue: a sustained overload), the queue holds at
 * most what Kafka's recent peak drain empties in this share of the budget: CoDel's good queue and bad queue. The whole
 * budget is there to ride out a stall (a leader move) without refusing; under an overload a queue of that length only
 * makes each accepted request wait it, and HTTP/1.1 answers in order, so the refusals pipelined behind an accepted
 * request wait as long. A 5-minute soak at twice the capacity with the whole budget (the product's cap, 50,000
 * records): accepted answers after 1.2 s at the median, 408,276 past the deadline; the same soak with the queue capped
 * at 5,000 records (~0.35 s of the drain): every answer within it.
 *
 * Of the peak (DRAIN_PEAK_DECAY), not of the estimate: a queue cut to a share of the drain it lets through measures
 * its own pace (fewer records per send, a lower drain, a shorter queue), and in soaks at 32,000/s the accepted rate
 * sank to 4,810-7,688/s of the 16,000/s the ingress takes. Kafka slowing down shows in the estimate's own limit (the
 * whole budget of the current drain), which is the lower one then.
 */
export const SHED_SHARE = 0.3;
/** Per interval (250 ms): the peak drain halves in about three minutes, long past any overload's dip. */
const DRAIN_PEAK_DECAY = 0.999;
/** The CPU gate (see above): event loop utilization and delay that count as saturated, and for how many samples in a row. */
const SATURATED_UTILIZATION = 0.9;
const LAG_TARGET_SHARE = 0.05;
const SATURATED_SAMPLES = 4;
/** How fast the most admitted in an interval is forgotten, per interval (halved in ~3.5 s). */
const PEAK_DECAY = 0.95;
/** Each saturated interval admits this share of the last one's produce requests; each interval with idle time grows the rate by CPU_GROWTH. */
const CPU_CUT = 0.8;
const CPU_GROWTH = 1.1;
/** The CPU gate never admits fewer produce requests per second than this, nor less than this share of the rate when it closed. */
const CPU_FLOOR_PER_S = 50;
const CPU_FLOOR_SHARE = 0.5;
/**
 * Samples the gate must stay open before the floor it last closed with is forgotten (10 s). Under an overload the
 * loop has idle time now and then, the gate opens, and it closes again within a second, when the most admitted lately
 * is the closed gate's own rate: a floor taken afresh from that halved it at each reopening (a 5-minute soak at
 * 32,000/s took 8,500/s in its first 10 s and 5,100/s by 80 s, and at 30,750/s on another box 6,384/s and then 559/s).
 */
const FLOOR_MEMORY_SAMPLES = 40;

/** What of the budget the queue's wait may take: the budget less the event loop's delay, at most MAX_LAG_SHARE of it. */
function queueBudgetMs(budgetMs: number, lagMs: number): number {
  return budgetMs - Math.min(Math.max(0, lagMs), MAX_LAG_SHARE * budgetMs);
}

/**
 * The most records that may wait (queued and in flight) for a new request to be admitted: what drains within the
 * budget less the event loop's delay (at most MAX_LAG_SHARE of it), and never less than what the floor drains within
 * the whole budget.
 */
export function admissionLimit(drainPerS: number, floorPerS: number, budgetMs: number, lagMs: number, maxQueued: number): number {
  const drained = (drainPerS * queueBudgetMs(budgetMs, lagMs)) / 1000;
  return Math.max(1, Math.min(maxQueued, Math.floor(Math.max(drained, (floorPerS * budgetMs) / 1000))));
}

/** One sampling interval: records Kafka acknowledged, whether the producer had records to send throughout, and how late the event loop ran the sampler. */
export interface DrainSample {
  drained: number;
  elapsedMs: number;
  busy: boolean;
  lagMs: number;
  /** How long the oldest request still waiting for Kafka had waited at the end of the interval (ms). */
  oldestWaitMs?: number;
  /** The event loop's utilization over the interval (0-1: the share of it not spent waiting for I/O). */
  utilization?: number;
}

/** Refusals by rule: the queue's limit, the sojourn rule, the CPU gate. */
export interface RefusedBy {
  limit: number;
  sojourn: number;
  cpuGate: number;
}

export interface AdmissionOptions {
  /** The longest wait a request may expect behind the backlog; 0 leaves only maxQueued. */
  budgetMs: number;
  maxQueued: number;
  floorPerS?: number;
  /** The clock of the CPU gate's token bucket (tests give a fake one: a stall between two calls adds tokens). */
  now?: () => number;
}

export class Admission {
  readonly #budgetMs: number;
  readonly #maxQueued: number;
  readonly #floorPerS: number;
  /** Records/s Kafka drains; undefined until the producer was first busy for a whole interval. */
  #estimate: number | undefined;
  /** The drain measured while busy (smoothed as the estimate, never raised), and its decaying peak (SHED_SHARE). */
  #measured: number | undefined;
  #drainPeak = 0;
  /** The event loop's delay, smoothed like the drain rate. */
  #lagMs = 0;
  #limit: number;
  /** The longest the oldest waiting request may have waited for a new one to be admitted (ms): the budget. */
  readonly #sojournMs: number;
  /** Whether the queue's limit refused in the last interval: the sojourn rule applies only then. */
  #shedding = false;
  /**
   * The limit's and the sojourn rule's totals (#refusedBy) at the last sample. Their refusals since, and not the CPU
   * gate's, decide probing; the limit's alone decide #shedding.
   */
  #refusedAtSample = { limit: 0, sojourn: 0 };
  /** Produce requests admitted since the last sample. */
  #admitted = 0;
  /** Saturated samples in a row (the CPU gate's interval). */
  #saturated = 0;
  /** The CPU gate: produce requests admitted per second while it is closed (Infinity: open), and its token bucket. */
  #cpuRatePerS = Number.POSITIVE_INFINITY;
  #cpuFloorPerS = CPU_FLOOR_PER_S;
  /** Samples since the gate last opened (FLOOR_MEMORY_SAMPLES of them forget its floor). */
  #openSamples = 0;
  /** The most produce requests admitted per second in an interval lately (decaying by PEAK_DECAY). */
  #admittedPeakPerS = 0;
  #tokens = 0;
  #tokensAt = 0;
  readonly #refusedBy: RefusedBy = { limit: 0, sojourn: 0, cpuGate: 0 };
  readonly #now: () => number;

  constructor(options: AdmissionOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#budgetMs = options.budgetMs;
    this.#maxQueued = options.maxQueued;
    this.#floorPerS = options.floorPerS ?? DRAIN_FLOOR_PER_S;
    this.#limit = options.maxQueued;
    this.#sojournMs = options.budgetMs > 0 ? options.budgetMs : Number.POSITIVE_INFINITY;
  }

  /**
   * The hot path: two comparisons while the CPU gate is open and the limit is not refusing, no allocation. `backlog`:
   * records queued and in flight; `waiting.oldestWaitMs`: how long the oldest request still waiting for them has
   * waited, read (it reads the clock) only while the sojourn rule applies and something waits.
   */
  admit(backlog: number, waiting?: { readonly oldestWaitMs: number }): boolean {
    if (backlog >= this.#limit) {
      this.#refusedBy.limit += 1;
      return false;
    }
    if (this.#shedding && backlog > 0 && waiting !== undefined && waiting.oldestWaitMs > this.#sojournMs) {
      this.#refusedBy.sojourn += 1;
      return false;
    }
    if (this.#cpuRatePerS !== Number.POSITIVE_INFINITY && !this.#takeToken()) {
      this.#refusedBy.cpuGate += 1;
      return false;
    }
    this.#admitted += 1;
    return true;
  }

  /** Produce requests refused so far, by the rule that refused them (only grow): which one an overload runs into. */
  get refusedBy(): Readonly<RefusedBy> {
    return this.#refusedBy;
  }

  #takeToken(): boolean {
    const now = this.#now();
    // At most a tenth of a second's worth saved up: a burst after a pause must not undo the gate.
    this.#tokens = Math.min(this.#cpuRatePerS / 10, this.#tokens + ((now - this.#tokensAt) * this.#cpuRatePerS) / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Produce requests per second the CPU gate admits (Infinity while it is open). */
  get cpuRatePerS(): number {
    return this.#cpuRatePerS;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Records/s the limit is derived from (the floor until measured). */
  get drainPerS(): number {
    return Math.max(this.#estimate ?? this.#floorPerS, this.#floorPerS);
  }

  /** The event loop's delay (ms), taken off the budget up to MAX_LAG_SHARE of it. */
  get lagMs(): number {
    return this.#lagMs;
  }

  /** Updates the estimate with one interval; refusals counted by admit() since the last call decide probing. */
  observe(sample: DrainSample): void {
    const { limit, sojourn } = this.#refusedBy;
    const refusedByLimit = limit - this.#refusedAtSample.limit;
    const refused = refusedByLimit + sojourn - this.#refusedAtSample.sojourn;
    const admitted = this.#admitted;
    this.#refusedAtSample = { limit, sojourn };
    this.#admitted = 0;
    this.#shedding = refusedByLimit > 0;
    if (this.#budgetMs <= 0 || sample.elapsedMs <= 0) return;
    this.#lagMs = smooth(this.#lagMs, Math.max(0, sample.lagMs));
    this.#gateCpu(sample, (admitted * 1000) / sample.elapsedMs);
    const rate = (sample.drained * 1000) / sample.elapsedMs;
    if (sample.busy && refused > 0 && this.#estimate !== undefined && (sample.oldestWaitMs ?? this.#budgetMs) < FAST_QUEUE_SHARE * this.#budgetMs) {
      // Refused while what waits goes out well within the budget: the limit, not Kafka, held the sends back. Never
      // past the rate whose limit is maxQueued: beyond it the cap refuses, not the estimate, which then grew by a
      // quarter each interval of a 5-minute soak (to 1e42 records/s) and would take a minute of a slow Kafka to fall.
      this.#estimate = Math.max(rate, Math.min(this.#estimate * FAST_QUEUE_RAISE, this.#rateAtCap()));
    } else if (sample.busy) {
      this.#estimate = Math.max(this.#floorPerS, smooth(this.#estimate, rate));
    } else if (refused > 0) {
      // Refusing while the producer ran dry: the estimate is too low (it learnt it during an outage). Probe upwards.
      this.#estimate = Math.max(rate, 2 * this.drainPerS);
    }
    // Otherwise it kept up with everything that came: nothing learnt about its capacity (maxQueued until it is measured).
    this.#limit = this.#estimate === undefined ? this.#maxQueued : admissionLimit(this.#estimate, this.#floorPerS, this.#budgetMs, this.#lagMs, this.#maxQueued);
    if (sample.busy) this.#measured = smooth(this.#measured, rate);
    this.#drainPeak = Math.max(this.#drainPeak * DRAIN_PEAK_DECAY, this.#measured ?? 0);
    // A standing queue (refused by the limit, the producer busy throughout): at most SHED_SHARE of the budget at the peak drain.
    if (this.#shedding && sample.busy) this.#limit = Math.min(this.#limit, admissionLimit(this.#drainPeak, this.#floorPerS, this.#budgetMs * SHED_SHARE, 0, this.#maxQueued));
  }

  /** The drain rate whose limit (admissionLimit) is maxQueued: what drains within the budget less the loop's delay. */
  #rateAtCap(): number {
    return (this.#maxQueued * 1000) / queueBudgetMs(this.#budgetMs, this.#lagMs);
  }

  /** The CPU gate (see the top of this file): closes after SATURATED_SAMPLES saturated samples in a row, opens again with idle time. */
  #gateCpu(sample: DrainSample, admittedPerS: number): void {
    const saturated = (sample.utilization ?? 0) >= SATURATED_UTILIZATION && sample.lagMs >= LAG_TARGET_SHARE * this.#budgetMs;
    this.#saturated = saturated ? this.#saturated + 1 : 0;
    this.#admittedPeakPerS = Math.max(admittedPerS, this.#admittedPeakPerS * PEAK_DECAY);
    if (this.#saturated >= SATURATED_SAMPLES) {
      if (this.#cpuRatePerS === Number.POSITIVE_INFINITY) {
        // The floor is never below CPU_FLOOR_PER_S, so the remembered one is too.
        const remembered = this.#openSamples < FLOOR_MEMORY_SAMPLES ? this.#cpuFloorPerS : CPU_FLOOR_PER_S;
        this.#cpuFloorPerS = Math.max(remembered, this.#admittedPeakPerS * CPU_FLOOR_SHARE);
        this.#tokensAt = this.#now();
      }
      this.#cpuRatePerS = Math.max(this.#cpuFloorPerS, Math.min(this.#cpuRatePerS, Math.max(admittedPerS, this.#cpuFloorPerS)) * CPU_CUT);
    } else if (!saturated && this.#cpuRatePerS !== Number.POSITIVE_INFINITY) {
      this.#cpuRatePerS *= CPU_GROWTH;
      if (this.#cpuRatePerS > 2 * Math.max(CPU_FLOOR_PER_S, admittedPerS)) {
        this.#cpuRatePerS = Number.POSITIVE_INFINITY;
        this.#tokensAt = 0;
        this.#openSamples = 0;
      }
    } else if (this.#cpuRatePerS === Number.POSITIVE_INFINITY) {
      this.#openSamples += 1;
    }
  }
}

/** What the sampler reads from the batching producer. */
export interface DrainSource {
  readonly backlog: number;
  /** How long the oldest request still waiting has waited (ms). */
  readonly oldestWaitMs: number;
  /** Records acknowledged so far, and how often the backlog fell to zero so far (both only grow). */
  readonly acknowledgedRecords: number;
  readonly idleCount: number;
}

/** Samples `source` every SAMPLE_MS into `admission`; returns the stop function. */
export function sampleDrain(admission: Pick<Admission, 'observe'>, source: DrainSource, now: () => number = () => performance.now()): () => void {
  let at = now();
  let acknowledged = source.acknowledgedRecords;
  let idle = source.idleCount;
  let backlog = source.backlog;
  let loop = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const t = now();
    const nextLoop = performance.eventLoopUtilization();
    admission.observe({
      drained: source.acknowledgedRecords - acknowledged,
      elapsedMs: t - at,
      busy: backlog > 0 && source.idleCount === idle && source.backlog > 0,
      lagMs: t - at - SAMPLE_MS,
      oldestWaitMs: source.oldestWaitMs,
      utilization: performance.eventLoopUtilization(nextLoop, loop).utilization,
    });
    loop = nextLoop;
    at = t;
    acknowledged = source.acknowledgedRecords;
    idle = source.idleCount;
    backlog = source.backlog;
  }, SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export interface AdmissionGateOptions {
  admission: Pick<Admission, 'admit'>;
  source: Pick<DrainSource, 'backlog' | 'oldestWaitMs'>;
  /** The produce routes' paths: only a POST to one of them is ever refused (probes, metrics and reads never are). */
  paths: readonly string[];
  /** Headers every answer carries (the security headers). */
  headers: Readonly<Record<string, string>>;
  /** Counts a refusal (sluice_ingress_rejected_requests_total{code="SLUICE_OVERLOADED"}). */
  refused: () => void;
  /** False: a refused connection's writes are not coalesced (the answers as before, for comparisons). Default true. */
  coalesce?: boolean;
}

/**
 * The server's request listener with admission in front of Fastify's: a produce request that would wait longer
 * than the budget is answered 503 + Retry-After with a fixed body (the error mapper's shape and code), its body
 * never parsed (Node discards it, so the connection stays usable). Before access control too: the answer says
 * nothing but "overloaded", and checking credentials first would spend the CPU the refusal is there to save.
 */
export function admissionGate(handler: RequestListener, options: AdmissionGateOptions): RequestListener {
  const { admission, source, refused } = options;
  const paths = new Set(options.paths);
  const body = Buffer.from(
    JSON.stringify(errorBody(new OverloadedError('the ingress cannot send this request to Kafka within its produce deadline (too many records are waiting); retry after Retry-After seconds'))),
  );
  // The headers Node must see (the length) go through writeHead; the rest are joined once (access/http.ts writeHeadWith).
  const lines = headLines({ ...options.headers, 'content-type': 'application/json; charset=utf-8' });
  const length = String(body.length);
  const retryAfter = String(OVERLOADED_RETRY_AFTER_S);
  const isProduceRoute = (url: string | undefined): boolean => {
    if (url === undefined) return false;
    const query = url.indexOf('?');
    return paths.has(query < 0 ? url : url.slice(0, query));
  };
  const coalesce = options.coalesce !== false;
  const refuse = (req: IncomingMessage, res: ServerResponse): void => {
    // From its first refusal on, a connection's answers of one loop turn go out in one writev (access/http.ts
    // coalesceWrites): under overload the per-answer syscall was ~40% of a refusal's CPU. Not before: for a connection
    // with one request at a time (most clients, in normal running) holding a write to the check phase saves no
    // syscall and costs a copy, a setImmediate and a tick per answer (single events ~15% more CPU per event).
    if (coalesce) coalesceWrites(req.socket);
    // Its body is dropped as it is parsed instead of held until the answer has gone out, which behind an accepted
    // request on the same connection (answers go out in order) is as long as that one waits.
    req.resume();
    refused();
    // While the ingress drains, its response class (producers/draining.ts) closes the connection after this answer.
    writeHeadWith(res, 503, lines, ['content-length', length, 'retry-after', retryAfter, CORRELATION_ID_HEADER, correlationIdOf(req)]);
    res.end(body);
  };
  return (req, res) => {
    if (req.method === 'POST' && !admission.admit(source.backlog, source) && isProduceRoute(req.url)) refuse(req, res);
    else handler(req, res);
  };
}
