import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SluiceConfig } from '../core/config.ts';
import { MalformedBodyError, NotFoundError, PayloadTooLargeError, SluiceError, UnsupportedMediaTypeError, ValidationError } from '../core/errors.ts';
import { registerHttpMetrics } from '../core/http-metrics.ts';
import { registerHttpTracing } from '../core/http-tracing.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { schemaTypeOf, topicByName, valueCodec, type Topology } from '../topology/model.ts';
import { BatchingProducer, type BatchingStats } from './batching-producer.ts';
import { registerBodyParsers } from './body-parsers.ts';
import { registerDocs } from './docs.ts';
import { KafkaConnection } from './kafka-connection.ts';
import { Readiness, registerProbes } from './readiness.ts';
import { createKafka } from '../kafka/index.ts';
import { OPEN_ACCESS, type AccessControl } from './access.ts';
import { Idempotency } from './idempotency.ts';
import { IdempotencyStore } from './idempotency-claims.ts';
import { registerReadRoute, type ReadStats } from './read-route.ts';
import { registerRoutes, type RouteBinding } from './routes.ts';
import { API_CHALLENGE, SLUICE_DENIALS } from '../access/denials.ts';
import { checkExposure, scheme, serverFactory } from '../access/http.ts';
import { installSecurity } from '../access/plugin.ts';
import { ingressRouteTable } from '../access/route-table.ts';

export interface IngressOptions {
  config: SluiceConfig;
  logger: Logger;
  topology: Topology;
  registry: RegistryClient;
  host?: string;
  port?: number;
  /** Test hook: runs after a keyed request's events were acknowledged, before its response is sent. */
  afterIdempotentWrite?: () => void;
  /** Who may produce and read (issue 12's access model plugs in here); everyone by default. */
  access?: AccessControl;
}

export interface Ingress {
  url: string;
  close(): Promise<void>;
  /** Batching counters (also on GET /metrics). */
  stats(): BatchingStats;
  /** The HTTP read path's streams. */
  readStats(): ReadStats;
}

const CORRELATION_ID = /^[\x21-\x7e]{1,128}$/;
const OVERLOADED_RETRY_AFTER_S = 1;

/**
 * Resolves each route's schema id once, at start: the registry is then off the
 * request path, and an incompatible schema (409) stops start-up with the
 * registry's reason instead of failing every request.
 */
export async function resolveBindings(topology: Topology, registry: RegistryClient, log: Logger): Promise<RouteBinding[]> {
  const bindings: RouteBinding[] = [];
  for (const route of topology.routes) {
    const topic = topicByName(topology, route.topic);
    const valueSchema = topic?.valueSchema;
    if (!valueSchema) throw new SluiceError('SLUICE_TOPOLOGY_INVALID', `route ${route.path}: topic ${route.topic} has no value schema`);
    const schemaId = await registry.register(valueSchema.subject, valueSchema.text, { schemaType: schemaTypeOf(valueSchema) });
    log.info({ path: route.path, topic: route.topic, subject: valueSchema.subject, schemaId }, 'route schema registered');
    bindings.push({ route, subject: valueSchema.subject, schemaId, codec: valueCodec(valueSchema) });
  }
  return bindings;
}

/** Fastify's own errors, as the coded errors every Sluice error body carries. */
export function toSluiceError(error: unknown, bodyLimit: number): SluiceError {
  if (error instanceof SluiceError) return error;
  const e = error as Partial<FastifyError>;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(`body is larger than the limit of ${bodyLimit} bytes`, error);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(`${e.message ?? 'unsupported media type'}; send application/json or application/x-ndjson`, error);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MalformedBodyError(e.message ?? 'malformed body', error);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new SluiceError('SLUICE_BAD_REQUEST', e.message ?? 'bad request', { statusCode: e.statusCode, cause: error });
  }
  return new SluiceError('SLUICE_INTERNAL', 'internal error; see the ingress log for this correlation id', { cause: error });
}

export function errorBody(error: SluiceError): Record<string, unknown> {
  const body: Record<string, unknown> = { error: error.code, message: error.message };
  if (error instanceof ValidationError) {
    body.path = error.violations[0]?.path ?? '';
    body.errors = error.violations.map((v) => (v.index === undefined ? { path: v.path, message: v.message } : { index: v.index, path: v.path, message: v.message }));
  }
  return body;
}

export function createMetrics(stats: () => BatchingStats) {
  const registry = new Registry();
  const metrics = {
    registry,
    batches: new Counter({ name: 'sluice_ingress_produce_batches_total', help: 'Produce requests sent to Kafka.', registers: [registry] }),
    records: new Counter({ name: 'sluice_ingress_produced_records_total', help: 'Records acknowledged by Kafka.', registers: [registry] }),
    failures: new Counter({ name: 'sluice_ingress_produce_failures_total', help: 'Produce requests that failed.', registers: [registry] }),
    batchSize: new Histogram({
      name: 'sluice_ingress_batch_records',
      help: 'Records per produce request.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
      registers: [registry],
    }),
    sendSeconds: new Histogram({
      name: 'sluice_ingress_produce_seconds',
      help: 'Time from send to acknowledgement.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    rejected: new Counter({ name: 'sluice_ingress_rejected_requests_total', help: 'Requests answered with an error.', labelNames: ['code'], registers: [registry] }),
  };
  new Gauge({
    name: 'sluice_ingress_queued_records',
    help: 'Records waiting to be sent.',
    registers: [registry],
    collect() {
      this.set(stats().queued);
    },
  });
  return metrics;
}

export async function startIngress(options: IngressOptions): Promise<Ingress> {
  const { config, topology, registry } = options;
  const log = options.logger;
  const bindings = await resolveBindings(topology, registry, log);
  const topics = [...new Set(bindings.map((b) => b.route.topic))];

  const connection = KafkaConnection.create(config, log, topics);

  // The metrics read the batcher's stats lazily, at scrape time, after it exists.
  const metrics = createMetrics(() => batcher.stats());
  const batcher: BatchingProducer = new BatchingProducer({
    send: (records) => connection.send(records),
    lingerMs: config.lingerMs,
    batchMaxRecords: config.batchMaxRecords,
    maxQueuedRecords: config.maxQueuedRecords,
    timeoutMs: config.produceTimeoutMs,
    logger: log,
    observer: {
      batchSent(records, ms) {
        metrics.batches.inc();
        metrics.records.inc(records);
        metrics.batchSize.observe(records);
        metrics.sendSeconds.observe(ms / 1000);
      },
      batchFailed() {
        metrics.failures.inc();
      },
    },
  });

  // Connecting early makes the first request fast; failing here is not fatal (see KafkaConnection).
  // Bounded: a hung broker must not hold start-up for the client's whole retry schedule.
  const warmUp = connection.warmUp().then(
    () => true,
    (error: unknown) => {
      log.warn({ err: error, topics }, 'Kafka is not reachable yet; the ingress starts anyway and answers 503 until it is');
      return false;
    },
  );
  let warmUpTimer: NodeJS.Timeout | undefined;
  const connected = await Promise.race([
    warmUp,
    new Promise<undefined>((resolve) => {
      warmUpTimer = setTimeout(() => resolve(undefined), config.produceTimeoutMs);
    }),
  ]);
  clearTimeout(warmUpTimer);
  if (connected === undefined) log.warn({ topics, timeoutMs: config.produceTimeoutMs }, 'Kafka has not answered yet; the ingress starts anyway');

  const readiness = new Readiness({ cacheMs: 3000, timeoutMs: Math.min(2000, config.produceTimeoutMs) });
  readiness.add('broker', () => connection.ready());
  readiness.add('registry', async () => {
    for (const b of bindings) await registry.request('GET', `/schemas/ids/${b.schemaId}`);
  });
  readiness.add('schemas', async () => {
    if (bindings.length !== topology.routes.length) throw new Error('not every route has a registered schema');
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlationId' }),
    bodyLimit: config.bodyLimit,
    serverFactory: serverFactory(config),
    requestIdHeader: false,
    genReqId: (req) => {
      const header = req.headers['x-correlation-id'];
      return typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
    },
  });
  registerBodyParsers(app, config.jsonMaxDepth);
  registerHttpMetrics(app, { service: 'ingress', registry: metrics.registry, metricsPath: false });
  registerHttpTracing(app);
  const routes = ingressRouteTable(bindings.map((b) => b.route.path));
  const control = installSecurity(app, { service: 'ingress', config, logger: log, routes, denials: SLUICE_DENIALS, challenge: API_CHALLENGE });

  // Callback hooks, not async ones: each async hook costs every request a promise and a microtask turn.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-correlation-id', request.id);
    done();
  });
  let shuttingDown = false;
  // A request in flight when close starts keeps its keep-alive connection open
  // afterwards, and Fastify's close waits for that connection (up to the 72 s
  // keep-alive timeout); telling the client to close it lets shutdown finish.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((error, request, reply) => {
    const failure = toSluiceError(error, config.bodyLimit);
    metrics.rejected.inc({ code: failure.code });
    // request.log already carries the correlation id.
    const context = { method: request.method, url: request.url, code: failure.code, status: failure.statusCode };
    if (failure.statusCode >= 500 && !failure.retryable) request.log.error({ ...context, err: error }, failure.message);
    else request.log.info(context, `request rejected: ${failure.message}`);
    if (failure.statusCode === 503) {
      reply.header('retry-after', String(failure.code === 'SLUICE_OVERLOADED' ? OVERLOADED_RETRY_AFTER_S : Math.max(1, Math.ceil(config.produceTimeoutMs / 1000))));
    }
    return reply.code(failure.statusCode).send(errorBody(failure));
  });

  app.setNotFoundHandler(async (request) => {
    throw new NotFoundError(
      `no route for ${request.method} ${request.url.split('?')[0]} (routes: ${[...bindings.map((b) => `POST ${b.route.path}`), `GET /v1/topics/{topic}/records`].join(', ') || 'none'})`,
    );
  });

  registerProbes(app, readiness, control);
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  const readKafka = createKafka(config, log, 'ingress-read');
  const readAdmin = readKafka.admin();
  const access = options.access ?? OPEN_ACCESS;
  const idempotencyStore = new IdempotencyStore(readKafka, readAdmin, config, log);
  // Kafka may be down at start (the ingress answers 503 until it is); keyed requests start the store again.
  if (connected) {
    await idempotencyStore.start().catch((error: unknown) => log.warn({ err: error }, 'Idempotency-Key requests cannot be served yet'));
  }
  registerRoutes(app, bindings, { producer: batcher, access, idempotency: Idempotency.forIngress(idempotencyStore, batcher, config, options.afterIdempotentWrite) });
  const reads = registerReadRoute(app, {
    kafka: readKafka,
    admin: readAdmin,
    registry,
    topics: topology.topics.map((t) => t.name),
    access,
    logger: log,
  });
  registerDocs(app, topology, config);

  try {
    checkExposure(config, options.host ?? config.ingressHost, 'ingress', log);
    await app.listen({ host: options.host ?? config.ingressHost, port: options.port ?? config.ingressPort });
  } catch (error) {
    await reads.close();
    await idempotencyStore.close();
    await readAdmin.close();
    await connection.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  // A wildcard address is not one a client can call; loopback reaches it.
  const bound = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address;
  const host = bound.includes(':') ? `[${bound}]` : bound;

  let closing: Promise<void> | undefined;
  return {
    url: `${scheme(config)}://${host}:${address.port}`,
    stats: () => batcher.stats(),
    readStats: () => reads.stats(),
    close() {
      // Order matters: stop taking requests (in-flight ones still complete, their
      // records still flush), then drain the queue, then drop the connections.
      closing ??= (async () => {
        shuttingDown = true;
        // Read streams never end by themselves; the server's close waits for their connections.
        await reads.close();
        await app.close();
        await batcher.close();
        await idempotencyStore.close();
        await readAdmin.close();
        await connection.close();
        log.info({ stats: batcher.stats() }, 'ingress closed');
      })();
      return closing;
    },
  };
}
