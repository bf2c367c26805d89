import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { HTTP_METRIC_NAMES, registerHttpMetrics, UNMATCHED_ROUTE } from '../../core/http-metrics.ts';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  return (await metric.get()).values as Sample[];
}

function value(list: Sample[], labels: Record<string, string>, metricName?: string): number | undefined {
  return list.find((s) => (metricName === undefined || s.metricName === metricName) && Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v))?.value;
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function build(): { app: FastifyInstance; registry: Registry } {
  const instance = Fastify();
  const registry = registerHttpMetrics(instance, { service: 'test' }).registry;
  instance.get<{ Params: { id: string } }>('/items/:id', async (request) => ({ id: request.params.id }));
  instance.post('/fail', async () => {
    throw new Error('boom');
  });
  app = instance;
  return { app: instance, registry };
}

describe('HTTP metrics per route', () => {
  it('labels requests with the route pattern, method and status, not the raw URL', async () => {
    const { app, registry } = build();
    for (const id of ['a', 'b', 'c']) expect((await app.inject({ method: 'GET', url: `/items/${id}?x=${id}` })).statusCode).toBe(200);

    const requests = await samples(registry, HTTP_METRIC_NAMES.requests);
    expect(value(requests, { service: 'test', method: 'GET', route: '/items/:id', status: '200' })).toBe(3);
    expect(requests.some((s) => String(s.labels.route).includes('/items/a'))).toBe(false);

    const duration = await samples(registry, HTTP_METRIC_NAMES.duration);
    expect(value(duration, { route: '/items/:id', status: '200' }, `${HTTP_METRIC_NAMES.duration}_count`)).toBe(3);
    expect(value(duration, { route: '/items/:id', status: '200' }, `${HTTP_METRIC_NAMES.duration}_sum`)).toBeGreaterThan(0);
  });

  it('counts 5xx answers as errors and leaves 2xx/4xx out of the error count', async () => {
    const { app, registry } = build();
    expect((await app.inject({ method: 'POST', url: '/fail' })).statusCode).toBe(500);
    expect((await app.inject({ method: 'GET', url: '/items/1' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(404);

    const errors = await samples(registry, HTTP_METRIC_NAMES.errors);
    expect(value(errors, { route: '/fail', status: '500' })).toBe(1);
    expect(errors.filter((s) => s.value > 0)).toHaveLength(1);
  });

  it('collapses every unknown URL into one label, whatever the path', async () => {
    const { app, registry } = build();
    for (let i = 0; i < 20; i += 1) await app.inject({ method: 'GET', url: `/scan/${i}/${Math.random()}` });
    await app.inject({ method: 'DELETE', url: '/items/1' });

    const requests = await samples(registry, HTTP_METRIC_NAMES.requests);
    expect(value(requests, { method: 'GET', route: UNMATCHED_ROUTE, status: '404' })).toBe(20);
    expect(value(requests, { method: 'DELETE', route: UNMATCHED_ROUTE, status: '404' })).toBe(1);
    expect(new Set(requests.map((s) => s.labels.route))).toEqual(new Set([UNMATCHED_ROUTE]));
  });

  it('serves the registry on GET /metrics in the Prometheus text format, and counts itself', async () => {
    const { app } = build();
    await app.inject({ method: 'GET', url: '/items/1' });
    const reply = await app.inject({ method: 'GET', url: '/metrics' });
    expect(reply.statusCode).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body).toContain(`${HTTP_METRIC_NAMES.requests}{service="test",method="GET",route="/items/:id",status="200"} 1`);
    expect(reply.body).toContain(`# TYPE ${HTTP_METRIC_NAMES.duration} histogram`);
  });

  it('registers into a given registry without a second endpoint when metricsPath is false', async () => {
    const registry = new Registry();
    const instance = Fastify();
    app = instance;
    registerHttpMetrics(instance, { service: 'ingress', registry, metricsPath: false });
    expect((await instance.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    expect(registry.getSingleMetric(HTTP_METRIC_NAMES.requests)).toBeDefined();
    expect(value(await samples(registry, HTTP_METRIC_NAMES.requests), { service: 'ingress', route: UNMATCHED_ROUTE, status: '404' })).toBe(1);
  });
});
