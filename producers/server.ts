import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { SluiceConfig } from '../core/config.ts';
import { SluiceError } from '../core/errors.ts';
import errorMapper from '../core/http-errors.ts';
import { registerHttpMetrics } from '../core/http-metrics.ts';
import { registerHttpTracing } from '../core/http-tracing.ts';
import { tracingEnabled } from '../core/tracing.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { schemaTypeOf, topicByName, valueCodec, type Topology } from '../topology/model.ts';
import { BatchingProducer, type BatchingStats } from './batching-producer.ts';
import { Admission, admissionGate, sampleDrain, type AdmissionGateOptions } from './admission.ts';
import { drainingResponse } from './draining.ts';
import { correlationIdOf, stampCorrelationId } from './correlation.ts';
import { ingressErrors } from './ingress-errors.ts';
import { admissionGauges, batchObserver, createMetrics, metricsRoute } from './ingress-metrics.ts';
import { warmUp } from './warm-up.ts';
import { DirectProduce } from './direct-produce.ts';
import { registerBodyParsers } from './body-parsers.ts';
import { registerDocs } from './docs.ts';
import { KafkaConnection } from './ingress-kafka.ts';
import { ingressReadiness, registerProbes } from './readiness.ts';
import { createKafka } from '../kafka/index.ts';
import { Idempotency } from './idempotency.ts';
import { IdempotencyStore } from './idempotency-claims.ts';
import { registerReadRoute, type ReadStats } from './read-route.ts';
import { SubjectContracts } from '../rules/index.ts';
import { registerRoutes, type RouteBinding } from './routes.ts';
import { API_CHALLENGE, SLUICE_DENIALS } from '../access/denials.ts';
import { checkExposure, listeningUrl, serverFactory } from '../access/http.ts';
import { installSecurity } from '../access/plugin.ts';
import { securityHeaders } from '../access/security-headers.ts';
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
  /** Test hook: each send to Kafka waits for it (a test holds the sends to build a backlog). */
  beforeSend?: () => Promise<void>;
}

export interface Ingress {
  url: string;
  close(): Promise<void>;
  /** Batching counters (also on GET /metrics). */
  stats(): BatchingStats;
  /** The HTTP read path's streams. */
  readStats(): ReadStats;
}

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
    bindings.push({ route, subject: valueSchema.subject, schemaId, codec: valueCodec(valueSchema), schemaText: valueSchema.text });
  }
  return bindings;
}

/**
 * Fastify's options for the ingress: the body limit, the hardened server (admission, then the direct path, in front
 * of Fastify; answers close their connections while the ingress drains; once admission refused on a connection, its
 * answers of one loop turn written together, access/http.ts coalesceWrites), correlation ids as request ids.
 */
function serverOptions(config: SluiceConfig, log: Logger, draining: () => boolean, admission: Omit<AdmissionGateOptions, 'headers'> | undefined, direct: DirectProduce): FastifyServerOptions {
  const factory = serverFactory(config, drainingResponse(draining));
  const headers = securityHeaders(config);
  return {
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlationId' }),
    bodyLimit: config.bodyLimit,
    serverFactory: (handler, options) => factory(admission === undefined ? direct.wrap(handler) : admissionGate(direct.wrap(handler), { ...admission, headers }), options),
    requestIdHeader: false,
    genReqId: correlationIdOf,
  };
}

/** The HTTP ingress: short wiring over the single-purpose files beside it (parsers, errors, routes, reads, probes, metrics, docs). */
export async function startIngress(options: IngressOptions): Promise<Ingress> {
  const { config, topology, registry, logger: log } = options;
  const bindings = await resolveBindings(topology, registry, log);
  const topics = [...new Set(bindings.map((b) => b.route.topic))];
  const connection = KafkaConnection.create(config, log, topics);
  // The metrics read the batcher's stats lazily, at scrape time, after it exists.
  const metrics = createMetrics(() => batcher.stats());
  const { lingerMs, batchMaxRecords, maxQueuedRecords, produceTimeoutMs } = config;
  const batcher = new BatchingProducer({
    send: options.beforeSend === undefined ? (records) => connection.send(records) : async (records) => (await options.beforeSend!(), connection.send(records)),
    lingerMs,
    batchMaxRecords,
    maxQueuedRecords,
    timeoutMs: produceTimeoutMs,
    logger: log,
    observer: batchObserver(metrics),
  });
  const budgetMs = (produceTimeoutMs * config.admissionWaitPercent) / 100;
  const admission = budgetMs > 0 ? new Admission({ budgetMs, maxQueued: maxQueuedRecords }) : undefined;
  if (admission) admissionGauges(metrics.registry, admission);
  const connected = await warmUp(connection, produceTimeoutMs, topics, log);
  const readKafka = createKafka(config, log, 'ingress-read');
  const readAdmin = readKafka.admin();
  const idempotencyStore = new IdempotencyStore(readKafka, readAdmin, config, log);
  // Kafka may be down at start (the ingress answers 503 until it is); keyed requests start the store again.
  if (connected) await idempotencyStore.start().catch((error: unknown) => log.warn({ err: error }, 'Idempotency-Key requests cannot be served yet'));

  let shuttingDown = false;
  const overloaded = metrics.rejected.labels('SLUICE_OVERLOADED');
  const gate = admission && {
    admission,
    source: batcher,
    paths: bindings.map((b) => b.route.path),
    refused: () => overloaded.inc(),
  };
  const direct = new DirectProduce();
  const app: FastifyInstance = Fastify(serverOptions(config, log, () => shuttingDown, gate, direct));
  const routeList = [...bindings.map((b) => `POST ${b.route.path}`), `GET /v1/topics/{topic}/records`];
  const errors = ingressErrors({ bodyLimit: config.bodyLimit, produceTimeoutMs, rejected: metrics.rejected, routes: routeList });
  void app.register(errorMapper, errors);
  registerBodyParsers(app, config.jsonMaxDepth);
  // Its tallies record the direct path's answers too (direct-produce.ts).
  const httpMetrics = registerHttpMetrics(app, { service: 'ingress', registry: metrics.registry, metricsPath: false });
  registerHttpTracing(app);
  const control = installSecurity(app, {
    service: 'ingress',
    config,
    logger: log,
    routes: ingressRouteTable(bindings.map((b) => b.route.path)),
    denials: SLUICE_DENIALS,
    challenge: API_CHALLENGE,
    // In the hook of the security headers, before access control: its refusals carry the correlation id too.
    everyRequest: stampCorrelationId,
  });
  registerProbes(app, ingressReadiness({ connection, registry, bindings, routes: topology.routes.length, produceTimeoutMs }), control);
  void app.register(metricsRoute, { registry: metrics.registry });
  const contracts = new SubjectContracts(registry, bindings, log);
  await contracts.start();
  // One context for the routes and the direct path: the same Idempotency (its in-flight keys) whichever path a request takes.
  const produce = { producer: batcher, contracts, idempotency: Idempotency.forIngress(idempotencyStore, batcher, config, options.afterIdempotentWrite) };
  registerRoutes(app, bindings, produce);
  // Authentication, limits and spans are Fastify's hooks: with any of them the routes serve every request.
  if (control.open && !tracingEnabled()) {
    direct.enable({
      bindings,
      context: produce,
      headers: securityHeaders(config),
      bodyLimit: config.bodyLimit,
      maxDepth: config.jsonMaxDepth,
      errors,
      tallies: httpMetrics.tallies,
      logger: log,
      closing: () => shuttingDown,
    });
  }
  const reads = registerReadRoute(app, { kafka: readKafka, admin: readAdmin, registry, topics: topology.topics.map((t) => t.name), logger: log });
  registerDocs(app, topology, config);

  const stopSampling = admission ? sampleDrain(admission, batcher) : () => {};
  try {
    checkExposure(config, options.host ?? config.ingressHost, 'ingress', log);
    await app.listen({ host: options.host ?? config.ingressHost, port: options.port ?? config.ingressPort });
  } catch (error) {
    stopSampling();
    contracts.stop();
    await reads.close();
    await idempotencyStore.close();
    await readAdmin.close();
    await connection.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    url: listeningUrl(app.server.address() as AddressInfo, config),
    stats: () => batcher.stats(),
    readStats: () => reads.stats(),
    close() {
      // Order matters: stop taking requests (in-flight ones still complete, their
      // records still flush), then drain the queue, then drop the connections.
      closing ??= (async () => {
        shuttingDown = true;
        // Read streams never end by themselves; the server's close waits for their connections.
        contracts.stop();
        await reads.close();
        await app.close();
        await batcher.close();
        stopSampling();
        await idempotencyStore.close();
        await readAdmin.close();
        await connection.close();
        log.info({ stats: batcher.stats() }, 'ingress closed');
      })();
      return closing;
    },
  };
}
