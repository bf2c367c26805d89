import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../core/config.ts';
import { RegistryError, SluiceError } from '../core/errors.ts';
import { registerHttpMetrics } from '../core/http-metrics.ts';
import { createKafka } from '../kafka/index.ts';
import type { Logger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { describeGroup, describeTopic, listGroups, listTopics } from './cluster.ts';
import { isDeadLetterTopic, registerDeadLetterRoutes } from './dead-letters.ts';
import { registerJsonBodyParser } from './json-body.ts';
import { LagHistory } from './lag-history.ts';
import { registerLiveTail, type LiveTailStats } from './live-tail.ts';
import { registerSchemaRoutes } from './schemas.ts';
import { registerStatic } from './static.ts';
import { replayTargets } from '../consumers/dead-letters.ts';
import { loadTopology } from '../topology/load.ts';
import type { Topology } from '../topology/model.ts';
import { ConsoleSessions, secureCookie } from '../access/console-session.ts';
import { SLUICE_DENIALS } from '../access/denials.ts';
import { checkExposure, scheme, serverFactory } from '../access/http.ts';
import { cannotProduceTo } from '../access/permissions.ts';
import { installSecurity } from '../access/plugin.ts';
import { CONSOLE_ROUTES } from '../access/route-table.ts';

export interface ConsoleOptions {
  config: SluiceConfig;
  logger: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Which topics are dead-letter topics and where their letters go back to; by default SLUICE_TOPOLOGY's. */
  topology?: Pick<Topology, 'workers' | 'bridges' | 'routes'>;
}

/** The topology file, if it can be read: without it the console still serves, and replays nothing (no topic is known to feed a dead-letter topic). */
function loadOwnTopology(config: SluiceConfig, log: Logger): Topology | undefined {
  try {
    return loadTopology(config.topologyFile);
  } catch (error) {
    log.warn({ err: error }, 'console: cannot read the topology; dead letters can be listed (by name) but not replayed');
    return undefined;
  }
}

export interface RunningConsole {
  url: string;
  /** Open live tails and the most bytes any had waiting for its browser. */
  tailStats(): LiveTailStats;
  close(): Promise<void>;
}

/** The web console: topics, schemas, consumer groups with lag history, a live tail, and dead letters (replayed by operators). */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const { config } = options;
  const log = options.logger.child({ component: 'console' });
  const kafka = createKafka(config, log, 'console');
  const registry = new RegistryClient(config.registryUrl);
  const admin = kafka.admin();

  const lagHistory = new LagHistory({
    intervalMs: config.consoleLagIntervalMs,
    logger: log,
    sample: async (groupId) => {
      const detail = await describeGroup(admin, groupId);
      return { totalLag: detail.totalLag, partitions: Object.fromEntries(detail.lag.map((l) => [`${l.topic}[${l.partition}]`, l.lag])) };
    },
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log.child({ component: 'console-http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: serverFactory(config),
  });
  registerJsonBodyParser(app, config.jsonMaxDepth);
  const sessions = new ConsoleSessions({ ttlMs: config.consoleSessionTtlMs, secure: secureCookie(config) });
  const access = installSecurity(app, { service: 'console', config, logger: log, routes: CONSOLE_ROUTES, denials: SLUICE_DENIALS, identity: sessions.identity });
  app.setErrorHandler((error: FastifyError | SluiceError, _request, reply) => {
    const status = error instanceof RegistryError ? error.httpStatus : typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 500) log.error({ err: error }, 'console request failed');
    void reply.status(status).send({ error: error instanceof SluiceError ? error.code : (error.code ?? 'SLUICE_INTERNAL'), message: error.message });
  });

  registerHttpMetrics(app, { service: 'console' });
  registerStatic(app);
  sessions.register(app, access);
  // `deadLetters`: the page offers the topic's dead letters (and operators their replay): by name, or as the topology declares them.
  const topology = options.topology ?? loadOwnTopology(config, log);
  const declared = new Set([...(topology?.workers ?? []), ...(topology?.bridges ?? [])].flatMap((w) => (w.deadLetter === undefined ? [] : [w.deadLetter])));
  const deadLetters = (name: string) => isDeadLetterTopic(name, config.consoleDeadLetterSuffix) || declared.has(name);
  app.get('/api/topics', async () => (await listTopics(admin)).map((t) => ({ ...t, deadLetters: deadLetters(t.name) })));
  app.get<{ Params: { name: string } }>('/api/topics/:name', async (request) => ({ ...(await describeTopic(admin, request.params.name)), deadLetters: deadLetters(request.params.name) }));
  app.get('/api/groups', async () => listGroups(admin));
  app.get<{ Params: { id: string } }>('/api/groups/:id', async (request) => {
    const detail = await describeGroup(admin, request.params.id);
    const history = lagHistory.record(request.params.id, {
      totalLag: detail.totalLag,
      partitions: Object.fromEntries(detail.lag.map((l) => [`${l.topic}[${l.partition}]`, l.lag])),
    });
    return { ...detail, history };
  });
  registerSchemaRoutes(app, registry, access);
  const liveTail = registerLiveTail(app, { kafka, registry, logger: log });
  registerDeadLetterRoutes(app, {
    kafka,
    admin,
    logger: log,
    isDeadLetterTopic: deadLetters,
    replayTargets: (topic) => (topology ? replayTargets(topology, topic) : new Set()),
    cannotProduceTo: (principal, topic) => cannotProduceTo(principal, topology?.routes ?? [], topic, access.open),
  });

  try {
    checkExposure(config, options.host ?? config.consoleHost, 'console', log);
    await app.listen({ host: options.host ?? config.consoleHost, port: options.port ?? config.consolePort });
  } catch (error) {
    lagHistory.close();
    await admin.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  const url = `${scheme(config)}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ url }, 'console listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    tailStats: () => liveTail.stats(),
    close() {
      closing ??= (async () => {
        lagHistory.close();
        // Live tails are open streams: end them rather than wait for the browsers to leave.
        app.server.closeAllConnections();
        try {
          await app.close();
        } finally {
          await admin.close();
        }
      })();
      return closing;
    },
  };
}
