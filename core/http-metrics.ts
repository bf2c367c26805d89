import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';

/**
 * Request metrics per route for every Sluice HTTP surface (ingress, registry,
 * console): count, errors and duration, labelled by the route *pattern*
 * (`/subjects/:subject/versions`), never the raw URL, so a scanner walking
 * random paths cannot grow the series without bound: every URL that matches
 * no route is counted under one label.
 */

/** The route label of requests that matched no route (404s of the not-found handler). */
export const UNMATCHED_ROUTE = 'unmatched';

export const HTTP_METRIC_NAMES = {
  requests: 'sluice_http_requests_total',
  errors: 'sluice_http_request_errors_total',
  duration: 'sluice_http_request_duration_seconds',
} as const;

type Labels = 'service' | 'method' | 'route' | 'status';

// Ingress answers in ~1-10 ms (linger + acks); registry reads in well under 1 ms; console admin calls take up to seconds.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The requests of one label set: what the three families report for it. */
interface Tally {
  readonly labels: Readonly<Record<Labels, string>>;
  count: number;
  sum: number;
  /** Per bucket of DURATION_BUCKETS (not cumulative); the last slot counts what is above every bound. */
  readonly buckets: number[];
}

/**
 * Each answered request counted where it lands, by route, method and status: a few Map look-ups and additions.
 * prom-client's inc and observe cost every request ~0.8 µs (a labels object, its hash string, label validation,
 * a closure per observe); the families below read these tallies when scraped instead.
 */
export class RequestTallies {
  readonly #service: string;
  readonly #byRoute = new Map<string, Map<string, Map<number, Tally>>>();
  readonly #all: Tally[] = [];

  constructor(service: string) {
    this.#service = service;
  }

  record(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.#byRoute.get(route);
    if (byMethod === undefined) this.#byRoute.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let tally = byStatus.get(status);
    if (tally === undefined) {
      tally = { labels: { service: this.#service, method, route, status: String(status) }, count: 0, sum: 0, buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0) };
      byStatus.set(status, tally);
      this.#all.push(tally);
    }
    tally.count += 1;
    tally.sum += seconds;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    tally.buckets[bucket]! += 1;
  }

  /** Every label set seen, in the order first seen. */
  all(): readonly Tally[] {
    return this.#all;
  }

  reset(): void {
    this.#byRoute.clear();
    this.#all.length = 0;
  }
}

/** A counter family of the tallies (requests, or only the 5xx ones), set from them when scraped. */
function talliedCounter(name: string, help: string, registry: Registry, tallies: RequestTallies, counts: (tally: Tally) => number): Counter<Labels> {
  return new Counter({
    name,
    help,
    labelNames: LABEL_NAMES,
    registers: [registry],
    collect() {
      this.reset();
      for (const tally of tallies.all()) {
        const count = counts(tally);
        if (count > 0) this.inc(tally.labels, count);
      }
    },
  });
}

/**
 * The duration family of the tallies: a prom-client Histogram (same name, type, labels and text) whose samples
 * are written from the tallies when scraped. Requests are recorded through RequestTallies, not observe().
 */
const DURATION_HELP = 'Time from request received to response sent, by route pattern and status.';

/** A sample as prom-client's histograms hand them to its registry: the bucket's own labels, the series' shared. */
interface HistogramSample {
  labels: { le?: number | '+Inf' };
  sharedLabels: Readonly<Record<Labels, string>>;
  value: number;
  metricName: string;
}

class TalliedHistogram extends Histogram<Labels> {
  // Not #private: prom-client's constructor calls reset() before this class's fields exist.
  private readonly tallies: RequestTallies;

  constructor(registry: Registry, tallies: RequestTallies) {
    super({
      name: HTTP_METRIC_NAMES.duration,
      help: DURATION_HELP,
      labelNames: LABEL_NAMES,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.tallies = tallies;
  }

  /** prom-client's sample shape, as its own histograms give it (the registry's text and get() read this). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: HistogramSample[]; aggregator: 'sum' }> {
    const name = HTTP_METRIC_NAMES.duration;
    const values: HistogramSample[] = [];
    for (const tally of this.tallies.all()) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((bound, i) => {
        cumulative += tally.buckets[i]!;
        values.push({ labels: { le: bound }, sharedLabels: tally.labels, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: tally.labels, value: tally.count, metricName: `${name}_bucket` },
        { labels: {}, sharedLabels: tally.labels, value: tally.sum, metricName: `${name}_sum` },
        { labels: {}, sharedLabels: tally.labels, value: tally.count, metricName: `${name}_count` },
      );
    }
    return { name, help: DURATION_HELP, type: 'histogram', values, aggregator: 'sum' };
  }

  /** Registry.resetMetrics() starts the three families again (the counters are read from the same tallies). */
  override reset(): void {
    super.reset();
    (this.tallies as RequestTallies | undefined)?.reset();
  }
}

export interface HttpMetrics {
  readonly registry: Registry;
  /** Where every answered request is recorded; the three families below are read from it when scraped. */
  readonly tallies: RequestTallies;
  readonly requests: Pick<Counter<Labels>, 'get'>;
  readonly errors: Pick<Counter<Labels>, 'get'>;
  readonly duration: Pick<Histogram<Labels>, 'get'>;
}

export interface HttpMetricsOptions {
  /** `ingress`, `registry`, `console`: one label, so one dashboard query covers every surface. */
  service: string;
  /** Where the families are registered; a new registry when omitted (then served on `metricsPath`). */
  registry?: Registry;
  /** Serves the registry on GET at this path; false when the caller already serves it. Default `/metrics`. */
  metricsPath?: string | false;
}

const LABEL_NAMES: Labels[] = ['service', 'method', 'route', 'status'];

export function createHttpMetrics(registry = new Registry(), service = ''): HttpMetrics {
  const tallies = new RequestTallies(service);
  return {
    registry,
    tallies,
    requests: talliedCounter(HTTP_METRIC_NAMES.requests, 'HTTP requests answered, by route pattern and status.', registry, tallies, (t) => t.count),
    errors: talliedCounter(HTTP_METRIC_NAMES.errors, 'HTTP requests answered with a 5xx, by route pattern and status.', registry, tallies, (t) => (Number(t.labels.status) >= 500 ? t.count : 0)),
    duration: new TalliedHistogram(registry, tallies),
  };
}

/** The route pattern Fastify matched, or UNMATCHED_ROUTE for the not-found handler (which has no pattern). */
function routeOf(request: FastifyRequest): string {
  if (request.is404) return UNMATCHED_ROUTE;
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}

/**
 * Adds the request metrics to `app` (call before its routes; the hook is
 * app-wide either way) and, unless told otherwise, a GET /metrics serving the
 * registry. Returns the metrics so a caller can register more families.
 */
export function registerHttpMetrics(app: FastifyInstance, options: HttpMetricsOptions): HttpMetrics {
  const metrics = createHttpMetrics(options.registry, options.service);
  const { tallies } = metrics;
  // A callback hook: an async one would cost every request a promise. reply.elapsedTime is Fastify's own
  // high-resolution clock from onRequest, in ms.
  app.addHook('onResponse', (request, reply, done) => {
    tallies.record(request.method, routeOf(request), reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  const path = options.metricsPath ?? '/metrics';
  if (path !== false) {
    app.get(path, async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }
  return metrics;
}
