import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

export interface HttpMetrics {
  readonly registry: Registry;
  readonly requests: Counter<Labels>;
  readonly errors: Counter<Labels>;
  readonly duration: Histogram<Labels>;
}

export interface HttpMetricsOptions {
  /** `ingress`, `registry`, `console`: one label, so one dashboard query covers every surface. */
  service: string;
  /** Where the families are registered; a new registry when omitted (then served on `metricsPath`). */
  registry?: Registry;
  /** Serves the registry on GET at this path; false when the caller already serves it. Default `/metrics`. */
  metricsPath?: string | false;
}

export function createHttpMetrics(registry = new Registry()): HttpMetrics {
  const labelNames: Labels[] = ['service', 'method', 'route', 'status'];
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: HTTP_METRIC_NAMES.requests, help: 'HTTP requests answered, by route pattern and status.', labelNames, registers }),
    errors: new Counter({ name: HTTP_METRIC_NAMES.errors, help: 'HTTP requests answered with a 5xx, by route pattern and status.', labelNames, registers }),
    duration: new Histogram({
      name: HTTP_METRIC_NAMES.duration,
      help: 'Time from request received to response sent, by route pattern and status.',
      labelNames,
      // Ingress answers in ~1-10 ms (linger + acks); registry reads in well under 1 ms; console admin calls take up to seconds.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

/** The route pattern Fastify matched, or UNMATCHED_ROUTE for the not-found handler (which has no pattern). */
function routeOf(request: FastifyRequest): string {
  if (request.is404) return UNMATCHED_ROUTE;
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}

/** Records one answered request: the onResponse hook's only job. */
class RequestObserver {
  private readonly metrics: HttpMetrics;
  private readonly service: string;

  constructor(metrics: HttpMetrics, service: string) {
    this.metrics = metrics;
    this.service = service;
  }

  observe(request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    const labels = { service: this.service, method: request.method, route: routeOf(request), status: String(status) };
    this.metrics.requests.inc(labels);
    if (status >= 500) this.metrics.errors.inc(labels);
    // reply.elapsedTime is Fastify's own high-resolution clock from onRequest, in ms.
    this.metrics.duration.observe(labels, reply.elapsedTime / 1000);
  }
}

/**
 * Adds the request metrics to `app` (call before its routes; the hook is
 * app-wide either way) and, unless told otherwise, a GET /metrics serving the
 * registry. Returns the metrics so a caller can register more families.
 */
export function registerHttpMetrics(app: FastifyInstance, options: HttpMetricsOptions): HttpMetrics {
  const metrics = createHttpMetrics(options.registry);
  const observer = new RequestObserver(metrics, options.service);
  // A callback hook: an async one would cost every request a promise.
  app.addHook('onResponse', (request, reply, done) => {
    observer.observe(request, reply);
    done();
  });
  const path = options.metricsPath ?? '/metrics';
  if (path !== false) {
    app.get(path, async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }
  return metrics;
}
