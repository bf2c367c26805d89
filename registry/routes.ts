import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { REGISTRY_DENIALS, API_CHALLENGE } from '../access/denials.ts';
import { serverFactory } from '../access/http.ts';
import { canReadSubject } from '../access/permissions.ts';
import { installSecurity } from '../access/plugin.ts';
import { registryWriteDetails } from './registry-audit.ts';
import { REGISTRY_ROUTES } from '../access/route-table.ts';
import type { SluiceConfig } from '../core/config.ts';
import errorMapper from '../core/http-errors.ts';
import { registerHttpMetrics } from '../core/http-metrics.ts';
import type { Logger } from '../core/logger.ts';
import confluentBody from './routes/body.ts';
import compatibilityRoutes from './routes/compatibility.ts';
import configRoutes from './routes/config.ts';
import contractRoutes from './routes/contracts.ts';
import { confluentErrors } from './routes/errors.ts';
import type { RegistryRouteOptions } from './routes/lookup.ts';
import modeRoutes from './routes/mode.ts';
import schemaRoutes from './routes/schemas.ts';
import subjectRoutes from './routes/subjects.ts';
import type { RegistryStore } from './store.ts';

/** The Confluent Schema Registry REST API v1, over a RegistryStore: the wiring of registry/routes/. */
export function buildRegistryApp(store: RegistryStore, logger: Logger, config: SluiceConfig): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ module: 'registry-http' }) as FastifyBaseLogger,
    // Per-request lines would drown the log; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: serverFactory(config),
  });
  // Before security: its refusals need the error bodies, and every answer the registry's content type.
  void app.register(confluentBody, { maxDepth: config.jsonMaxDepth }).register(errorMapper, confluentErrors);
  const security = { config, logger, routes: REGISTRY_ROUTES, denials: REGISTRY_DENIALS, challenge: API_CHALLENGE, describeWrite: registryWriteDetails(store.state) };
  const access = installSecurity(app, { service: 'registry', ...security });
  registerHttpMetrics(app, { service: 'registry' });
  /**
   * What a request may see of subjects it did not name: an id is readable only through a subject that uses it
   * and the caller may read (as with Confluent's RBAC), and a submitted schema's references resolve only
   * readable subjects. Anything else answers as if it did not exist (40403 for an id, as Confluent does, or the
   * reference's "has no version"), so the answer does not reveal that it does.
   */
  const routes: RegistryRouteOptions = { store, readable: (request) => (subject) => canReadSubject(request.principal, subject, access.open) };
  app.get('/', async () => ({}));
  for (const plugin of [subjectRoutes, schemaRoutes, compatibilityRoutes, configRoutes, modeRoutes, contractRoutes]) void app.register(plugin, routes);
  return app;
}
