import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { registerHttpTracing, requestTraceContext } from '../../core/http-tracing.ts';
import { createLogger } from '../../core/logger.ts';
import {
  contextFromAmqpHeaders,
  contextFromRecordHeaders,
  contextFromStringHeaders,
  contextWith,
  startProcessSpan,
  startRecordSpan,
  startSendSpan,
  startTracing,
  traceHeaders,
  tracingEnabled,
  withAmqpTraceHeaders,
  withRecordTraceHeaders,
  type Tracing,
} from '../../core/tracing.ts';
import type { RecordHeaders } from '../../kafka/types.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

const config = loadConfig({}, { logLevel: 'silent' });
const logger = createLogger(config, 'tracing-test');

/** A context holding a remote span, as if extracted from a caller. */
function remote(traceId = TRACE_ID, spanId = SPAN_ID): Context {
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
}

let running: Tracing | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  propagation.disable();
});

/** The W3C propagator alone (what startTracing installs), without an SDK. */
function useW3C(): void {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

describe('tracing off (the default)', () => {
  it('starts nothing without OTEL_EXPORTER_OTLP_ENDPOINT, and the helpers carry nothing', async () => {
    expect(await startTracing({ config, logger })).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
    expect(traceHeaders(remote())).toEqual({});
    const headers: RecordHeaders = [['correlation-id', Buffer.from('c-1')]];
    expect(withRecordTraceHeaders(headers, remote())).toBe(headers);
    expect(trace.getSpanContext(contextFromRecordHeaders([['traceparent', Buffer.from(TRACEPARENT)]]))).toBeUndefined();
  });

  it('adds no hook to a Fastify app', async () => {
    const app = Fastify();
    registerHttpTracing(app);
    let context: Context | undefined = ROOT_CONTEXT;
    app.get('/x', async (request) => {
      context = requestTraceContext(request);
      return {};
    });
    await app.inject({ method: 'GET', url: '/x', headers: { traceparent: TRACEPARENT } });
    expect(context).toBeUndefined();
    await app.close();
  });
});

describe('W3C trace context in Kafka record headers', () => {
  it('reads traceparent and tracestate from header pairs (Buffers), names in any case, the last repeat winning', () => {
    useW3C();
    const ctx = contextFromRecordHeaders([
      ['correlation-id', Buffer.from('c-1')],
      ['traceparent', Buffer.from(`00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`)],
      ['TraceParent', Buffer.from(TRACEPARENT)],
      ['tracestate', Buffer.from('vendor=abc,other=1')],
    ]);
    const span = trace.getSpanContext(ctx);
    expect(span).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(span?.traceState?.get('vendor')).toBe('abc');
  });

  it('ignores a malformed traceparent (a new trace starts rather than a broken one continuing)', () => {
    useW3C();
    for (const bad of ['00-xyz-123-01', `00-${'0'.repeat(32)}-${SPAN_ID}-01`, '']) {
      expect(trace.getSpanContext(contextFromRecordHeaders([['traceparent', Buffer.from(bad)]])), bad).toBeUndefined();
    }
  });

  it('writes the context as Buffers, replacing the trace headers a record had and keeping the others in order', () => {
    useW3C();
    const input: RecordHeaders = [
      ['correlation-id', Buffer.from('c-1')],
      ['traceparent', Buffer.from(`00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`)],
      ['sluice-source', Buffer.from('orders/0/7')],
    ];
    const out = withRecordTraceHeaders(input, remote());
    expect(out.map(([name, value]) => [name, value?.toString()])).toEqual([
      ['correlation-id', 'c-1'],
      ['sluice-source', 'orders/0/7'],
      ['traceparent', TRACEPARENT],
    ]);
    expect(input).toHaveLength(3);
    expect(trace.getSpanContext(contextFromRecordHeaders(out))?.spanId).toBe(SPAN_ID);
  });

  it('round-trips through string-decoded headers too (what the worker reads today)', () => {
    useW3C();
    const headers: Record<string, string> = { 'correlation-id': 'c-1', ...traceHeaders(remote()) };
    expect(headers.traceparent).toBe(TRACEPARENT);
    expect(trace.getSpanContext(contextFromStringHeaders(headers))?.traceId).toBe(TRACE_ID);
    expect(trace.getSpanContext(contextFromStringHeaders({ TRACEPARENT: TRACEPARENT }))?.traceId).toBe(TRACE_ID);
  });
});

describe('W3C trace context in AMQP header tables', () => {
  it('reads string and Buffer values (publishers differ)', () => {
    useW3C();
    expect(trace.getSpanContext(contextFromAmqpHeaders({ traceparent: TRACEPARENT }))?.spanId).toBe(SPAN_ID);
    expect(trace.getSpanContext(contextFromAmqpHeaders({ traceparent: Buffer.from(TRACEPARENT), 'x-retries': 2 }))?.spanId).toBe(SPAN_ID);
    expect(trace.getSpanContext(contextFromAmqpHeaders({ traceparent: 42 }))).toBeUndefined();
    expect(trace.getSpanContext(contextFromAmqpHeaders(undefined))).toBeUndefined();
  });

  it('writes a copy with the context as strings, replacing old trace headers, leaving the input untouched', () => {
    useW3C();
    const input = { 'x-retries': 2, traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, tracestate: 'old=1' };
    const out = withAmqpTraceHeaders(input, remote());
    expect(out).toEqual({ 'x-retries': 2, traceparent: TRACEPARENT });
    expect(input.tracestate).toBe('old=1');
  });
});

describe('tracing on', () => {
  it('send and process spans continue their parent, and the process span is the parent of what the handler writes', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await startTracing({ config, logger, exporter });
    running = tracing;
    expect(tracingEnabled()).toBe(true);

    const send = startSendSpan(remote(), { destination: 'orders', count: 3 });
    const onRecord = withRecordTraceHeaders([], contextWith(remote(), send));
    send.end();
    const handle = startProcessSpan(contextFromRecordHeaders(onRecord), 'handle', { destination: 'orders' });
    const output = withRecordTraceHeaders([], contextWith(ROOT_CONTEXT, handle));
    handle.end();

    const [sent, handled] = exporter.getFinishedSpans();
    expect(sent).toMatchObject({ name: 'send orders', kind: SpanKind.PRODUCER });
    expect(sent!.attributes).toMatchObject({ 'messaging.system': 'kafka', 'messaging.destination.name': 'orders', 'messaging.batch.message_count': 3 });
    expect(sent!.spanContext().traceId).toBe(TRACE_ID);
    expect(sent!.parentSpanContext?.spanId).toBe(SPAN_ID);
    expect(handled).toMatchObject({ name: 'handle orders', kind: SpanKind.CONSUMER });
    expect(handled!.parentSpanContext?.spanId).toBe(sent!.spanContext().spanId);
    expect(trace.getSpanContext(contextFromRecordHeaders(output))?.spanId).toBe(handled!.spanContext().spanId);

    await tracing!.close();
    running = undefined;
    expect(tracingEnabled()).toBe(false);
    expect(traceHeaders(remote())).toEqual({});
  });

  it('a record span continues its input, its headers carry it to outputs, and it ends failed or not', async () => {
    expect(startRecordSpan('handle', { destination: 'orders' }, () => remote())).toBeUndefined();
    const exporter = new InMemorySpanExporter();
    running = await startTracing({ config, logger, exporter });
    const input: RecordHeaders = [['traceparent', Buffer.from(TRACEPARENT)]];

    const ok = startRecordSpan('handle', { destination: 'orders', attributes: { 'sluice.worker': 'score' } }, () => contextFromRecordHeaders(input))!;
    const output = withRecordTraceHeaders(input, contextFromStringHeaders(ok.headers));
    ok.end();
    const failing = startRecordSpan('handle', { destination: 'orders' }, () => contextFromRecordHeaders(input))!;
    failing.retrying(1, new TypeError('flaky'));
    failing.fail(new RangeError('no'));

    const [handled, failed] = exporter.getFinishedSpans();
    expect(handled).toMatchObject({ name: 'handle orders', kind: SpanKind.CONSUMER });
    expect(handled!.attributes['sluice.worker']).toBe('score');
    expect(handled!.parentSpanContext?.spanId).toBe(SPAN_ID);
    expect(output.map(([n, v]) => [n, v?.toString()])).toEqual([['traceparent', `00-${TRACE_ID}-${handled!.spanContext().spanId}-01`]]);
    const deadLetter = ok.carry([
      ['traceparent', Buffer.from(TRACEPARENT)],
      ['sluice.error.class', Buffer.from('RangeError')],
    ]);
    expect(deadLetter.map(([n, v]) => [n, v?.toString()])).toEqual([
      ['sluice.error.class', 'RangeError'],
      ['traceparent', `00-${TRACE_ID}-${handled!.spanContext().spanId}-01`],
    ]);
    expect(failed!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no' });
    expect(failed!.events.map((e) => e.name)).toEqual(['retry', 'exception']);
    expect(failed!.events[0]!.attributes).toEqual({ attempt: 1, 'error.type': 'TypeError' });
  });

  it('gives each HTTP request a server span under the caller’s traceparent, or a new trace', async () => {
    const exporter = new InMemorySpanExporter();
    running = await startTracing({ config, logger, exporter });
    const app = Fastify();
    registerHttpTracing(app);
    app.get<{ Params: { id: string } }>('/items/:id', async (request) => ({ traceparent: traceHeaders(requestTraceContext(request)!).traceparent }));
    app.get('/fail', async () => {
      throw new Error('boom');
    });

    const continued = await app.inject({ method: 'GET', url: '/items/7?x=1', headers: { traceparent: TRACEPARENT } });
    await app.inject({ method: 'GET', url: '/items/8' });
    await app.inject({ method: 'GET', url: '/fail' });
    await app.close();

    const [first, second, failed] = exporter.getFinishedSpans();
    expect(first).toMatchObject({ name: 'GET /items/:id', kind: SpanKind.SERVER });
    expect(first!.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.route': '/items/:id', 'url.path': '/items/7', 'http.response.status_code': 200 });
    expect(first!.spanContext().traceId).toBe(TRACE_ID);
    expect(first!.parentSpanContext?.spanId).toBe(SPAN_ID);
    expect((continued.json() as { traceparent: string }).traceparent).toBe(`00-${TRACE_ID}-${first!.spanContext().spanId}-01`);
    expect(second!.spanContext().traceId).not.toBe(TRACE_ID);
    expect(second!.parentSpanContext).toBeUndefined();
    expect(failed!.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed!.attributes['http.response.status_code']).toBe(500);
  });

  it('exports over OTLP/HTTP to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces with the service name', async () => {
    const received: { url: string | undefined; type: string | undefined; body: Buffer }[] = [];
    const collector = createServer((request: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        received.push({ url: request.url, type: request.headers['content-type'], body: Buffer.concat(chunks) });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
      const otlpConfig = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'sluice-test-svc' }, { logLevel: 'silent' });
      running = await startTracing({ config: otlpConfig, logger });
      startSendSpan(ROOT_CONTEXT, { destination: 'orders' }).end();
      await running!.close();
      running = undefined;
      expect(received).toHaveLength(1);
      expect(received[0]!.url).toBe('/v1/traces');
      expect(received[0]!.body.toString('latin1')).toContain('sluice-test-svc');
      expect(received[0]!.body.toString('latin1')).toContain('send orders');
    } finally {
      await new Promise((resolve) => collector.close(resolve));
    }
  });
});
