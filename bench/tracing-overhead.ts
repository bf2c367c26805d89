import { avroCodecFromTypes } from '../core/formats/index.ts';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyRequest } from 'fastify';
import { createTypes } from '../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { registerHttpTracing } from '../core/http-tracing.ts';
import { createLogger } from '../core/logger.ts';
import { startTracing } from '../core/tracing.ts';
import type { BatchingProducer, OutgoingRecord, RecordAck } from '../producers/batching-producer.ts';
import { isReceivedBody, registerBodyParsers } from '../producers/body-parsers.ts';
import { traceProduce } from '../producers/produce-tracing.ts';
import { checkEvents, registerRoutes, toRecords, type RouteBinding } from '../producers/routes.ts';
import { eventPool, median, round } from './common.ts';

/**
 * What tracing costs the ingress's request path, Kafka left out (a producer
 * that acknowledges at once), so the difference is not lost in broker noise:
 *
 *   baseline  the produce route as it was before tracing (no tracing code at all)
 *   off       the route as shipped, tracing off (the default)
 *   on        tracing on as in production (batching OTLP/HTTP exporter), to a collector that drops what it gets
 *
 * Requests go through Fastify's inject (routing, body parsing, validation,
 * Avro encoding, reply serialisation; no sockets). The variants run in
 * alternating batches; each batch's process CPU time (not wall time: on a
 * shared machine waiting for a core is not cost) per request is compared,
 * by median and by best batch.
 *
 *   node bench/tracing-overhead.ts [--batches 15] [--requests 2000] [--variants baseline,off,on]
 *   node bench/tracing-overhead.ts --micro
 */

type Variant = 'baseline' | 'off' | 'on';
const VARIANTS: Variant[] = ['baseline', 'off', 'on'];

/** Acknowledges every record at once: the request path without Kafka. */
function instantProducer(): BatchingProducer {
  let offset = 0;
  const produce = async (records: OutgoingRecord[]): Promise<RecordAck[]> => records.map((r) => ({ topic: r.topic, partition: 0, offset: String(offset++) }));
  return { produce } as unknown as BatchingProducer;
}

/** A collector that accepts every export and keeps nothing: the SDK's whole production path (batching, OTLP encoding, HTTP) runs. */
async function nullCollector(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface App {
  inject: ReturnType<typeof Fastify>['inject'];
  close(): Promise<void>;
}

async function build(variant: Variant, binding: RouteBinding): Promise<App> {
  const producer = instantProducer();
  const app = Fastify();
  registerBodyParsers(app);
  if (variant === 'baseline') {
    app.post(binding.route.path, async (request, reply) => {
      if (!isReceivedBody(request.body)) throw new Error('no body');
      const { events, batch } = request.body;
      checkEvents(binding.codec, events, batch);
      const acks = await producer.produce(toRecords(binding, events, request.id));
      const results = acks.map((ack) => ({ ...ack, schemaId: binding.schemaId }));
      return reply.code(200).send(batch ? { results } : results[0]);
    });
  } else {
    registerHttpTracing(app);
    registerRoutes(app, [binding], { producer });
  }
  await app.ready();
  return app;
}

/** CPU µs per request over one batch: CPU time, not wall time, so time spent waiting for a core the neighbours hold does not count. */
async function batch(app: App, bodies: string[], requests: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < requests; i += 1) {
    const reply = await app.inject({ method: 'POST', url: '/v1/orders', headers: { 'content-type': 'application/json' }, payload: bodies[i % bodies.length] });
    if (reply.statusCode !== 200) throw new Error(`status ${reply.statusCode}: ${reply.body}`);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / requests;
}

/**
 * `--micro`: just the code tracing adds to a request when off (traceProduce's
 * check around building and producing the records), in CPU ns per call: the
 * figure the request-level comparison cannot resolve on a noisy machine.
 */
async function micro(binding: RouteBinding, event: unknown): Promise<void> {
  const producer = instantProducer();
  const request = {} as FastifyRequest;
  const variants = {
    direct: () => producer.produce(toRecords(binding, [event], 'id')),
    traceProduce: () => traceProduce(request, 'orders', 1, (headers) => producer.produce(toRecords(binding, [event], 'id', headers))),
  };
  const calls = 20_000;
  const times: Record<keyof typeof variants, number[]> = { direct: [], traceProduce: [] };
  for (let b = 0; b < 40; b += 1) {
    for (const [name, call] of Object.entries(variants) as [keyof typeof variants, () => Promise<unknown>][]) {
      const start = process.cpuUsage();
      for (let i = 0; i < calls; i += 1) await call();
      const used = process.cpuUsage(start);
      times[name].push(((used.user + used.system) * 1000) / calls);
    }
  }
  console.table(Object.entries(times).map(([name, t]) => ({ variant: name, 'CPU ns/call (best batch)': round(Math.min(...t), 0), 'CPU ns/call (median batch)': round(median(t), 0) })));
}

async function main(args: string[]): Promise<void> {
  const option = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const variantsArg = args[args.indexOf('--variants') + 1];
  const chosen = args.includes('--variants') && variantsArg ? (variantsArg.split(',') as Variant[]) : VARIANTS;
  const batches = option('batches', 15);
  const requests = option('requests', 2000);
  const config = loadConfig({}, { logLevel: 'silent' });
  const logger = createLogger(config, 'bench-tracing');
  const schema = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
  const binding: RouteBinding = {
    route: { method: 'POST', path: '/v1/orders', topic: 'orders', key: 'orderId' },
    subject: 'orders-value',
    schemaId: 1,
    codec: avroCodecFromTypes(createTypes(schema)),
  };
  const pool = eventPool(500);
  if (args.includes('--micro')) return micro(binding, pool.orders[0]);
  const bodies = pool.singleBodies;
  // Built with tracing off, then tracing is turned on for the third: the
  // hooks are decided when an app is built, the produce span per request.
  const apps: Record<Variant, App> = { baseline: await build('baseline', binding), off: await build('off', binding), on: undefined as unknown as App };
  const collector = await nullCollector();
  const tracing = await startTracing({ config: loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint }, { logLevel: 'silent' }), logger });
  apps.on = await build('on', binding);
  const times: Record<Variant, number[]> = { baseline: [], off: [], on: [] };
  try {
    for (const variant of chosen) await batch(apps[variant], bodies, requests); // JIT warm-up
    for (let b = 0; b < batches; b += 1) for (const variant of chosen) times[variant].push(await batch(apps[variant], bodies, requests));
  } finally {
    await Promise.all(VARIANTS.map((v) => apps[v].close()));
    await tracing?.close();
    await collector.close();
  }
  const best = (v: Variant): number => Math.min(...times[v]);
  const versus = (value: number, base: number): string => (chosen.includes('baseline') ? `${round((value / base - 1) * 100, 1)}%` : '-');
  console.table(
    chosen.map((v) => ({
      variant: v,
      'CPU µs/request (best batch)': round(best(v), 2),
      'CPU µs/request (median batch)': round(median(times[v]), 2),
      'best vs baseline': versus(best(v), Math.min(...times.baseline)),
      'median vs baseline': versus(median(times[v]), median(times.baseline)),
    })),
  );
}

await main(process.argv.slice(2));
