import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { hostname } from 'node:os';
import type { SluiceConfig } from './config.ts';
import { SluiceError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { KafkaRecord, RecordHeaders } from './records.ts';

/**
 * OpenTelemetry traces for Sluice: one trace per event, from the HTTP request
 * through the Kafka record to the worker's outputs and the RabbitMQ bridge,
 * carried in W3C Trace Context headers (`traceparent`, `tracestate`).
 *
 * Off by default, and then free: the SDK is imported only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, so without it no SDK module is loaded,
 * the OpenTelemetry API stays its no-op self, and the call sites check
 * `tracingEnabled()` before doing any tracing work at all.
 *
 * Contexts are passed explicitly (no async context manager): each hop knows
 * its parent (the request, the input record), which keeps AsyncLocalStorage off
 * the hot path and makes the propagation visible in the code.
 */

export const TRACER_NAME = 'sluice';
/** W3C Trace Context header names (also the Kafka and AMQP header names: Kafka and AMQP have no standard of their own). */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';
const TRACE_HEADERS: ReadonlySet<string> = new Set([TRACEPARENT, TRACESTATE]);

/** A running SDK, shaped as a CLI service so `serve` closes it last (after the components whose spans it exports). */
export interface Tracing {
  readonly name: 'tracing';
  /** Exports what is still buffered, then stops; tracing is off again afterwards. */
  close(): Promise<void>;
}

export interface TracingOptions {
  config: SluiceConfig;
  logger: Logger;
  /** Replaces the OTLP exporter (tests: an in-memory exporter); spans are then exported one by one, synchronously. */
  exporter?: SpanExporter;
}

let tracer: Tracer | undefined;

/** True once startTracing has installed the SDK in this process. */
export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/** The Sluice tracer; only meaningful when tracingEnabled() (the API's no-op tracer otherwise). */
export function sluiceTracer(): Tracer {
  return tracer ?? trace.getTracer(TRACER_NAME);
}

/** A URL fit for the log: user and password (if someone put them in the endpoint) removed. */
function withoutCredentials(url: string): string {
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  return shown.toString();
}

/** A given exporter gets spans one by one as they end (tests read them at once); OTLP gets them batched, off the request path. */
async function spanProcessor(exporter: SpanExporter | undefined, endpoint: string | undefined): Promise<SpanProcessor> {
  const { BatchSpanProcessor, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  if (exporter) return new SimpleSpanProcessor(exporter);
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  // The spec's rule for the signal-agnostic endpoint: traces go to <endpoint>/v1/traces.
  return new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }));
}

/**
 * Installs the OpenTelemetry SDK with an OTLP/HTTP exporter when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (or an exporter is given); returns
 * undefined, having loaded nothing, otherwise.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing | undefined> {
  const { config, logger } = options;
  const endpoint = config.otelExporterEndpoint;
  if (!options.exporter && endpoint === undefined) return undefined;
  if (tracer) throw new SluiceError('SLUICE_TRACING_STARTED', 'tracing is already started in this process');
  const [{ BasicTracerProvider }, { W3CTraceContextPropagator }, { resourceFromAttributes }, processor] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
    spanProcessor(options.exporter, endpoint),
  ]);
  const serviceName = config.otelServiceName ?? 'sluice';
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': config.instanceId ?? `${hostname()}-${process.pid}` }),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  tracer = trace.getTracer(TRACER_NAME);
  if (endpoint !== undefined && !options.exporter) logger.info({ endpoint: withoutCredentials(endpoint), serviceName }, 'tracing on: exporting spans over OTLP/HTTP');

  let stopping: Promise<void> | undefined;
  return {
    name: 'tracing',
    close() {
      stopping ??= (async () => {
        tracer = undefined;
        try {
          await provider.shutdown();
        } finally {
          trace.disable();
          propagation.disable();
        }
      })();
      return stopping;
    },
  };
}

// ---------------------------------------------------------------------------
// Carriers: where W3C context lives on each hop. Header names are matched
// case-insensitively (HTTP lower-cases them; an AMQP or Kafka producer may not).

/** Kafka record headers as name/value pairs (kafka/types.ts). A repeated name: the last one wins, as headersToStrings does. */
const recordHeadersGetter: TextMapGetter<RecordHeaders> = {
  keys: (carrier) => carrier.map(([name]) => name),
  get(carrier, key) {
    for (let i = carrier.length - 1; i >= 0; i -= 1) {
      const [name, value] = carrier[i]!;
      if (name.toLowerCase() === key) return value?.toString('utf8');
    }
    return undefined;
  },
};

/** String-valued headers: HTTP request headers, or Kafka headers already decoded to strings. */
const stringHeadersGetter: TextMapGetter<Readonly<Record<string, string | string[] | undefined>>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const direct = carrier[key];
    if (direct !== undefined) return direct;
    const name = Object.keys(carrier).find((k) => k.toLowerCase() === key);
    return name === undefined ? undefined : carrier[name];
  },
};

/** An AMQP 0-9-1 header table (amqplib): values arrive as Buffers or strings depending on the publisher. */
const amqpHeadersGetter: TextMapGetter<Readonly<Record<string, unknown>> | undefined> = {
  keys: (carrier) => Object.keys(carrier ?? {}),
  get(carrier, key) {
    if (!carrier) return undefined;
    const name = key in carrier ? key : Object.keys(carrier).find((k) => k.toLowerCase() === key);
    const value = name === undefined ? undefined : carrier[name];
    if (typeof value === 'string') return value;
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    return undefined;
  },
};

const recordSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

/** The W3C headers that carry `ctx`; empty when tracing is off or ctx has no valid span. */
export function traceHeaders(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out, recordSetter);
  return out;
}

/** The context a Kafka record's headers carry (ROOT_CONTEXT-based; no span when they carry none). */
export function contextFromRecordHeaders(headers: RecordHeaders): Context {
  return propagation.extract(ROOT_CONTEXT, headers, recordHeadersGetter);
}

/** The context HTTP request headers or string-decoded Kafka headers carry. */
export function contextFromStringHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, stringHeadersGetter);
}

/** The context an AMQP message's header table carries. */
export function contextFromAmqpHeaders(headers: Readonly<Record<string, unknown>> | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers, amqpHeadersGetter);
}

/**
 * `headers` with the trace headers of `ctx` instead of any they had (an output
 * must not carry its input's traceparent as well as its own). Unchanged when
 * there is nothing to inject.
 */
export function withRecordTraceHeaders(headers: RecordHeaders, ctx: Context): RecordHeaders {
  return replaceTraceHeaders(headers, traceHeaders(ctx));
}

function replaceTraceHeaders(headers: RecordHeaders, values: Readonly<Record<string, string>>): RecordHeaders {
  const inject = Object.entries(values);
  if (inject.length === 0) return headers;
  return [...headers.filter(([name]) => !TRACE_HEADERS.has(name.toLowerCase())), ...inject.map(([name, value]) => [name, Buffer.from(value, 'utf8')] as const)];
}

/** A copy of an AMQP header table with the trace headers of `ctx` (as strings, which every AMQP client reads). */
export function withAmqpTraceHeaders(headers: Readonly<Record<string, unknown>> | undefined, ctx: Context): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (!TRACE_HEADERS.has(name.toLowerCase())) out[name] = value;
  return Object.assign(out, traceHeaders(ctx));
}

// ---------------------------------------------------------------------------
// Spans. Names and attributes follow the OpenTelemetry messaging conventions.

export interface MessagingSpanOptions {
  /** The Kafka topic or AMQP exchange/queue. */
  destination: string;
  system?: 'kafka' | 'rabbitmq';
  /** Records in the operation (a batch is one span). */
  count?: number;
  attributes?: Attributes;
}

function messagingAttributes(operation: string, options: MessagingSpanOptions): Attributes {
  const attributes: Attributes = {
    'messaging.system': options.system ?? 'kafka',
    'messaging.operation.type': operation,
    'messaging.destination.name': options.destination,
    ...options.attributes,
  };
  if (options.count !== undefined && options.count !== 1) attributes['messaging.batch.message_count'] = options.count;
  return attributes;
}

/** A PRODUCER span (`send <topic>`) under `parent`; inject its context (trace.setSpan) into what it sends. */
export function startSendSpan(parent: Context, options: MessagingSpanOptions): Span {
  return sluiceTracer().startSpan(`send ${options.destination}`, { kind: SpanKind.PRODUCER, attributes: messagingAttributes('send', options) }, parent);
}

/** A CONSUMER span (`<name> <topic>`, e.g. `handle orders`) continuing the trace of the record or message that is handled. */
export function startProcessSpan(parent: Context, name: string, options: MessagingSpanOptions): Span {
  return sluiceTracer().startSpan(`${name} ${options.destination}`, { kind: SpanKind.CONSUMER, attributes: messagingAttributes('process', options) }, parent);
}

/**
 * The span of handling one record or message (a worker's `handle`, a bridge's
 * `forward`), continuing the trace its headers carry. Spread `headers` into
 * everything it produces (outputs, dead letters, AMQP messages) so they
 * continue the trace from this span, not from the input's.
 */
export class RecordSpan {
  readonly #span: Span;
  /** `traceparent`/`tracestate` of this span. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(span: Span, parent: Context) {
    this.#span = span;
    this.headers = traceHeaders(trace.setSpan(parent, span));
  }

  /** `headers` (Kafka pairs) with this span's trace headers instead of any they had, e.g. a dead letter's copy of its input's. */
  carry(headers: RecordHeaders): RecordHeaders {
    return replaceTraceHeaders(headers, this.headers);
  }

  /** A failed attempt that will be retried: an event on the span, which stays open. */
  retrying(attempt: number, error: unknown): void {
    this.#span.addEvent('retry', { attempt, 'error.type': error instanceof Error ? error.name : typeof error });
  }

  end(): void {
    this.#span.end();
  }

  fail(error: unknown): void {
    endSpanWithError(this.#span, error);
  }
}

/**
 * Starts a CONSUMER span `<name> <destination>` under the context `parent()`
 * reads from the input's headers; undefined, reading nothing, when tracing is
 * off, so a call site costs one branch: `span?.end()`, `...span?.headers`.
 */
export function startRecordSpan(name: string, options: MessagingSpanOptions, parent: () => Context): RecordSpan | undefined {
  if (!tracingEnabled()) return undefined;
  const context = parent();
  return new RecordSpan(startProcessSpan(context, name, options), context);
}

/**
 * startRecordSpan for a Kafka record that is read: destination its topic, its
 * partition and offset as attributes, under the context its headers carry.
 * Pass `attributes` built once per consumer: with tracing off this allocates nothing.
 */
export function startKafkaRecordSpan(name: string, record: KafkaRecord, attributes: Attributes): RecordSpan | undefined {
  if (!tracingEnabled()) return undefined;
  return startRecordSpan(
    name,
    { destination: record.topic, attributes: { ...attributes, 'messaging.destination.partition.id': String(record.partition), 'messaging.kafka.offset': Number(record.offset) } },
    () => contextFromRecordHeaders(record.headers),
  );
}

/** Ends `span` as failed by `error`: recorded as an exception event, status ERROR. */
export function endSpanWithError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/** The context to inject for `span`, under `parent`. */
export function contextWith(parent: Context, span: Span): Context {
  return trace.setSpan(parent, span);
}
