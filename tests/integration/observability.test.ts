import { spawnSync } from 'node:child_process';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole, type RunningConsole } from '../../console/server.ts';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startTracing, type Tracing } from '../../core/tracing.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { hasKcat } from '../support/kcat.ts';
import { orderTopology } from '../support/order-topology.ts';
import { randomOrder } from '../support/orders.ts';
import { brokers, createTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';
import { headerText, outputsOf, workerHarness } from '../support/workers.ts';

/**
 * Metrics per route on every HTTP surface, and one trace from an HTTP POST to
 * the Kafka record and on through the worker to its output, against a real broker. Tracing is on for this whole file
 * (an in-memory exporter), so the ingress registers its span hooks.
 */

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN = 'b7ad6b7169203331';

let config: SluiceConfig;
let log: Logger;
let topic: string;
let exporter: InMemorySpanExporter;
let tracing: Tracing | undefined;
let registry: RunningRegistry;
let ingress: Ingress;
let console_: RunningConsole;

beforeAll(async () => {
  config = testConfig({ lingerMs: '5', logLevel: 'silent' });
  log = testLogger(config, 'observability-test');
  topic = uniqueName('obs-orders');
  await createTopics([{ topic, numPartitions: 2 }]);
  exporter = new InMemorySpanExporter();
  tracing = await startTracing({ config, logger: log, exporter });
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, 2), registry: new RegistryClient(registry.url), port: 0 });
  console_ = await startConsole({ config: testConfig({ registryUrl: registry.url, logLevel: 'silent' }), logger: log, port: 0 });
});

afterAll(async () => {
  await console_?.close();
  await ingress?.close();
  await registry?.close();
  await tracing?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic])).catch(() => undefined);
});

async function scrape(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample line, by its exact label set (prom-client prints labels in declaration order). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const selector = `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
  const line = text.split('\n').find((l) => l.startsWith(`${selector} `));
  return line === undefined ? undefined : Number(line.slice(selector.length + 1));
}

function routeLabels(text: string): Set<string> {
  return new Set([...text.matchAll(/^sluice_http_requests_total\{[^}]*route="([^"]*)"/gm)].map((m) => m[1]!));
}

describe('HTTP metrics per route on every surface', () => {
  it('the ingress counts produce requests by route and status beside its own families, and collapses unknown URLs', async () => {
    const ok = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(randomOrder()) });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orderId":1}' });
    expect(bad.status).toBe(400);
    for (const path of ['/v1/nope', '/admin', '/v1/orders/../../etc/passwd']) expect((await fetch(`${ingress.url}${path}`)).status).toBe(404);

    const text = await scrape(ingress.url);
    expect(sample(text, 'sluice_http_requests_total', { service: 'ingress', method: 'POST', route: '/v1/orders', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'ingress', method: 'POST', route: '/v1/orders', status: '400' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'ingress', method: 'GET', route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'sluice_http_request_duration_seconds_count', { service: 'ingress', method: 'POST', route: '/v1/orders', status: '200' })).toBeGreaterThanOrEqual(1);
    expect([...routeLabels(text)].every((r) => ['/v1/orders', 'unmatched', '/metrics', '/healthz', '/readyz'].includes(r) || r.startsWith('/docs'))).toBe(true);
    // The ingress's own families are still on the same endpoint.
    expect(text).toMatch(/^sluice_ingress_produced_records_total \d+/m);
    expect(text).toContain('# TYPE sluice_http_request_errors_total counter');
  });

  it('the registry exports GET /metrics with its Confluent routes as patterns', async () => {
    const client = new RegistryClient(registry.url);
    await client.request('GET', '/subjects');
    await client.request('GET', `/subjects/${encodeURIComponent(`${topic}-value`)}/versions`);
    expect((await fetch(`${registry.url}/subjects/no-such-subject/versions`)).status).toBe(404);
    expect((await fetch(`${registry.url}/random/${Date.now()}`)).status).toBe(404);

    const text = await scrape(registry.url);
    expect(sample(text, 'sluice_http_requests_total', { service: 'registry', method: 'GET', route: '/subjects', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'registry', method: 'GET', route: '/subjects/:subject/versions', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'registry', method: 'GET', route: '/subjects/:subject/versions', status: '404' })).toBe(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'registry', method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect([...routeLabels(text)].some((r) => r.includes(topic) || r.includes('no-such-subject'))).toBe(false);
  });

  it('the console exports GET /metrics with its API routes as patterns', async () => {
    expect((await fetch(`${console_.url}/api/topics`)).status).toBe(200);
    expect((await fetch(`${console_.url}/api/topics/${topic}`)).status).toBe(200);
    const text = await scrape(console_.url);
    expect(sample(text, 'sluice_http_requests_total', { service: 'console', method: 'GET', route: '/api/topics', status: '200' })).toBe(1);
    expect(sample(text, 'sluice_http_requests_total', { service: 'console', method: 'GET', route: '/api/topics/:name', status: '200' })).toBe(1);
  });
});

/** One record's headers, read back with kcat (librdkafka), an independent client. */
function recordHeaders(partition: number, offset: string): Record<string, string> {
  const result = spawnSync('kcat', ['-C', '-b', brokers().join(','), '-t', topic, '-p', String(partition), '-o', offset, '-c', '1', '-e', '-q', '-J'], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`kcat exited ${result.status}: ${result.stderr}`);
  const record = JSON.parse(result.stdout.trim()) as { headers?: string[] };
  const pairs = record.headers ?? [];
  const out: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}

describe.skipIf(!hasKcat)('one trace from the HTTP request to the Kafka record', () => {
  it("continues the caller's traceparent: an ingress span, a produce span under it, and the produce span's context on the record", async () => {
    exporter.reset();
    const reply = await fetch(`${ingress.url}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01`, tracestate: 'vendor=x1' },
      body: JSON.stringify(randomOrder()),
    });
    expect(reply.status).toBe(200);
    const { partition, offset } = (await reply.json()) as { partition: number; offset: string };

    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER);
    const produce = spans.find((s) => s.kind === SpanKind.PRODUCER);
    expect(server).toMatchObject({ name: 'POST /v1/orders' });
    expect(server!.spanContext().traceId).toBe(TRACE_ID);
    expect(server!.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(server!.attributes['http.response.status_code']).toBe(200);
    expect(produce).toMatchObject({ name: `send ${topic}` });
    expect(produce!.spanContext().traceId).toBe(TRACE_ID);
    expect(produce!.parentSpanContext?.spanId).toBe(server!.spanContext().spanId);
    expect(produce!.attributes).toMatchObject({ 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'messaging.kafka.offset': Number(offset) });

    const headers = recordHeaders(partition, offset);
    expect(headers.traceparent).toBe(`00-${TRACE_ID}-${produce!.spanContext().spanId}-01`);
    expect(headers.tracestate).toBe('vendor=x1');
    expect(headers['correlation-id']).toBe(reply.headers.get('x-correlation-id'));
  });

  it('starts a trace when the caller sends none, every record of a batch carrying it', async () => {
    exporter.reset();
    const reply = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([randomOrder(), randomOrder(), randomOrder()]) });
    expect(reply.status).toBe(200);
    const { results } = (await reply.json()) as { results: { partition: number; offset: string }[] };

    const server = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
    const produce = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER)!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(produce.attributes['messaging.batch.message_count']).toBe(3);
    const traceparent = `00-${server.spanContext().traceId}-${produce.spanContext().spanId}-01`;
    for (const r of results) expect(recordHeaders(r.partition, r.offset).traceparent).toBe(traceparent);
  });

  it('an invalid event gives an ingress span with the 400 and no produce span', async () => {
    exporter.reset();
    const reply = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orderId":2}' });
    expect(reply.status).toBe(400);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.kind)).toEqual([SpanKind.SERVER]);
    expect(spans[0]!.attributes['http.response.status_code']).toBe(400);
  });
});

describe('one trace from the HTTP request through the worker to its output', () => {
  it('the exactly-once worker handles the record in a span under the ingress send span, and its output carries that span', async () => {
    const h = await workerHarness({ partitions: 2 });
    // An ingress whose route writes to the worker's input, its events framed with the worker's registry.
    const route = { method: 'POST', path: '/v1/orders', topic: h.spec.input, key: 'orderId' } as const;
    const front = await startIngress({ config, logger: log, topology: { ...h.topology, routes: [route] }, registry: h.registry, port: 0 });
    try {
      await h.start(undefined, { delivery: 'exactly-once' });
      exporter.reset();
      const reply = await fetch(`${front.url}/v1/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` },
        body: JSON.stringify(randomOrder()),
      });
      expect(reply.status).toBe(200);
      const [output] = outputsOf(h, await h.collector.waitFor((records) => outputsOf(h, records).length >= 1, 30_000, 'the scored order'));

      const spans = exporter.getFinishedSpans();
      const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
      const send = spans.find((s) => s.name === `send ${h.spec.input}`)!;
      const handle = spans.find((s) => s.name === `handle ${h.spec.input}`)!;
      expect(server).toMatchObject({ name: 'POST /v1/orders' });
      expect(handle).toMatchObject({ kind: SpanKind.CONSUMER });
      for (const span of [server, send, handle]) expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(server.parentSpanContext?.spanId).toBe(PARENT_SPAN);
      expect(send.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(handle.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(handle.attributes).toMatchObject({ 'sluice.worker': h.spec.name, 'messaging.destination.name': h.spec.input });
      expect(handle.status.code).toBe(SpanStatusCode.UNSET);
      // The output's consumer continues the same trace, from the handle span.
      expect(headerText(output!.headers, 'traceparent')).toBe(`00-${TRACE_ID}-${handle.spanContext().spanId}-01`);
      expect(output!.headers.filter(([name]) => name === 'traceparent')).toHaveLength(1);
    } finally {
      await front.close();
      await h.close();
    }
  });
});
