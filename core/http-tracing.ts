import { SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { contextFromStringHeaders, sluiceTracer, tracingEnabled } from './tracing.ts';

/**
 * One SERVER span per HTTP request (`POST /v1/orders`), continuing the
 * caller's W3C `traceparent` when it sends one and starting a trace otherwise.
 * Registered only when tracing is on: with tracing off the app has no extra
 * hook at all.
 */

interface RequestTrace {
  span: Span;
  context: Context;
}

/** Per request, without decorating Fastify's request (whose shape other plugins share). */
const traces = new WeakMap<FastifyRequest, RequestTrace>();

/** The context of the request's span, to parent what the handler does; undefined when tracing is off. */
export function requestTraceContext(request: FastifyRequest): Context | undefined {
  return traces.get(request)?.context;
}

function begin(request: FastifyRequest): void {
  const parent = contextFromStringHeaders(request.headers);
  const route = request.routeOptions.url;
  const span = sluiceTracer().startSpan(
    route === undefined ? request.method : `${request.method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': request.method,
        'url.path': request.url.split('?')[0],
        ...(route === undefined ? {} : { 'http.route': route }),
        'sluice.correlation_id': request.id,
      },
    },
    parent,
  );
  traces.set(request, { span, context: trace.setSpan(parent, span) });
}

function end(request: FastifyRequest, status: number | undefined): void {
  const entry = traces.get(request);
  if (!entry) return;
  traces.delete(request);
  if (status === undefined) {
    entry.span.setStatus({ code: SpanStatusCode.ERROR, message: 'client closed the request' });
  } else {
    entry.span.setAttribute('http.response.status_code', status);
    // The HTTP conventions: a 4xx is the client's error, not the server span's.
    if (status >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
  }
  entry.span.end();
}

export function registerHttpTracing(app: FastifyInstance): void {
  if (!tracingEnabled()) return;
  app.addHook('onRequest', async (request) => begin(request));
  app.addHook('onResponse', async (request, reply) => end(request, reply.statusCode));
  app.addHook('onRequestAbort', async (request) => end(request, undefined));
}
