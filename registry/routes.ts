import { isUtf8 } from 'node:buffer';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { REGISTRY_DENIALS, API_CHALLENGE } from '../access/denials.ts';
import { serverFactory } from '../access/http.ts';
import { canReadSubject } from '../access/permissions.ts';
import { installSecurity } from '../access/plugin.ts';
import { registryWriteDetails } from '../access/registry-audit.ts';
import { REGISTRY_ROUTES } from '../access/route-table.ts';
import type { SluiceConfig } from '../core/config.ts';
import { RegistryHttpError } from '../core/errors.ts';
import { registerHttpMetrics } from '../core/http-metrics.ts';
import { JsonTooDeepError, requireJsonDepth } from '../core/json.ts';
import type { Logger } from '../core/logger.ts';
import type { SchemaReference } from '../core/formats/types.ts';
import { deleteConfig, deleteMode, deleteSubject, deleteVersion, parseVersion, registerSchema, setConfig, setMode, testCompatibility } from './commands.ts';
import { parseSchemaRequest, type SubjectReadable } from './schemas.ts';
import type { VersionEntry } from './state.ts';
import type { RegistryStore } from './store.ts';

/** The Confluent Schema Registry REST API v1, over a RegistryStore. */

export const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const JSON_TYPES = ['application/vnd.schemaregistry.v1+json', 'application/vnd.schemaregistry+json'];

type Query = Record<string, string | undefined>;
interface SubjectParams {
  subject: string;
}
interface VersionParams extends SubjectParams {
  version: string;
}
interface IdParams {
  id: string;
}

const flag = (query: unknown, name: string): boolean => (query as Query | undefined)?.[name] === 'true';

/** `schemaType` and `references` appear only when not AVRO / not empty, as Confluent answers. */
function typeAndReferences(entry: { schemaType: string; references: SchemaReference[] }): { schemaType?: string; references?: SchemaReference[] } {
  return {
    ...(entry.schemaType !== 'AVRO' ? { schemaType: entry.schemaType } : {}),
    ...(entry.references.length > 0 ? { references: entry.references } : {}),
  };
}

function versionBody(entry: VersionEntry): { subject: string; version: number; id: number; schemaType?: string; references?: SchemaReference[]; schema: string } {
  return { subject: entry.subject, version: entry.version, id: entry.id, ...typeAndReferences(entry), schema: entry.schema };
}

function parseId(raw: string): number {
  const id = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw RegistryHttpError.schemaNotFound(`Schema ${raw} not found`);
  return id;
}

export function buildRegistryApp(store: RegistryStore, logger: Logger, config: SluiceConfig): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ module: 'registry-http' }) as FastifyBaseLogger,
    // Per-request lines would drown the log; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: serverFactory(config),
  });
  const state = store.state;
  const security = { config, logger, routes: REGISTRY_ROUTES, denials: REGISTRY_DENIALS, challenge: API_CHALLENGE, describeWrite: registryWriteDetails(state) };
  const access = installSecurity(app, { service: 'registry', ...security });
  /**
   * What a request may see of subjects it did not name: an id is readable only through a subject that uses it
   * and the caller may read (as with Confluent's RBAC), and a submitted schema's references resolve only
   * readable subjects. Anything else answers as if it did not exist (40403 for an id, as Confluent does, or the
   * reference's "has no version"), so the answer does not reveal that it does.
   */
  const readable =
    (request: FastifyRequest): SubjectReadable =>
    (subject) =>
      canReadSubject(request.principal, subject, access.open);
  registerHttpMetrics(app, { service: 'registry' });

  // One parser for all three types; an empty body (clients send DELETEs with a content type) is no body.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser([...JSON_TYPES, 'application/json'], { parseAs: 'buffer' }, (_request, body, done) => {
    // Decoding invalid UTF-8 would silently store U+FFFD in a schema: refuse it instead.
    if (!isUtf8(body as Buffer)) {
      done(new RegistryHttpError(400, 400, 'Malformed JSON request body: not valid UTF-8'), undefined);
      return;
    }
    const text = (body as Buffer).toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      requireJsonDepth(text, config.jsonMaxDepth);
      done(null, JSON.parse(text));
    } catch (error) {
      const reason = error instanceof JsonTooDeepError ? `the body ${error.message}` : (error as Error).message;
      done(new RegistryHttpError(400, 400, `Malformed JSON request body: ${reason}`, error), undefined);
    }
  });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('content-type', CONTENT_TYPE);
  });

  /**
   * Answers a read; a miss first catches up with the topic once, so a schema
   * just registered through another instance is found rather than reported missing.
   */
  async function read<T>(answer: () => T): Promise<T> {
    try {
      return answer();
    } catch (error) {
      if (!(error instanceof RegistryHttpError) || error.statusCode !== 404) throw error;
      await store.catchUp();
      return answer();
    }
  }

  function schemaVersion(subject: string, rawVersion: string, includeDeleted: boolean): VersionEntry {
    const spec = parseVersion(rawVersion);
    if (!state.hasSubject(subject, includeDeleted)) throw RegistryHttpError.subjectNotFound(subject);
    const entry = spec === 'latest' ? state.latest(subject, includeDeleted) : state.version(subject, spec);
    if (!entry || (entry.deleted && !includeDeleted)) throw RegistryHttpError.versionNotFound(subject, rawVersion);
    return entry;
  }

  /** The schema of an id, if any version (soft-deleted ones too, which id look-ups still find) of a subject the caller may read uses it. */
  function storedSchema(rawId: string, canRead: SubjectReadable): { id: number; schema: string; schemaType: string; references: SchemaReference[] } {
    const id = parseId(rawId);
    const stored = state.schemaById(id);
    if (!stored || !state.usesOfId(id, true).some((use) => canRead(use.subject))) throw RegistryHttpError.schemaNotFound(`Schema ${id} not found`);
    return stored;
  }

  const raw = (reply: FastifyReply, text: string): FastifyReply => reply.type(CONTENT_TYPE).send(text);

  app.get('/', async () => ({}));
  app.get('/schemas/types', async () => ['JSON', 'PROTOBUF', 'AVRO']);

  app.get('/subjects', async (request) => state.subjects(flag(request.query, 'deleted')));

  app.get<{ Params: SubjectParams }>('/subjects/:subject/versions', async (request) =>
    read(() => {
      const versions = state.versions(request.params.subject, flag(request.query, 'deleted'));
      if (versions.length === 0) throw RegistryHttpError.subjectNotFound(request.params.subject);
      return versions.map((v) => v.version);
    }),
  );

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version', async (request) =>
    read(() => versionBody(schemaVersion(request.params.subject, request.params.version, flag(request.query, 'deleted')))),
  );

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version/schema', async (request, reply) => {
    const entry = await read(() => schemaVersion(request.params.subject, request.params.version, flag(request.query, 'deleted')));
    return raw(reply, entry.schema);
  });

  app.post<{ Params: SubjectParams }>('/subjects/:subject/versions', async (request) => store.execute((s) => registerSchema(s, request.params.subject, request.body, readable(request))));

  app.post<{ Params: SubjectParams }>('/subjects/:subject', async (request) => {
    const subject = request.params.subject;
    const includeDeleted = flag(request.query, 'deleted');
    return read(() => {
      if (!state.hasSubject(subject, includeDeleted)) throw RegistryHttpError.subjectNotFound(subject);
      const { schema, schemaType, references } = parseSchemaRequest(state, request.body, readable(request));
      const entry = state.findInSubject(subject, schema, schemaType, references, includeDeleted);
      if (!entry) throw RegistryHttpError.schemaNotFound(`Schema not found under subject '${subject}'`);
      return versionBody(entry);
    });
  });

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version/referencedby', async (request) =>
    read(() => {
      const entry = schemaVersion(request.params.subject, request.params.version, true);
      return state.referencedBy(entry.subject, entry.version);
    }),
  );

  app.delete<{ Params: SubjectParams }>('/subjects/:subject', async (request) => store.execute((s) => deleteSubject(s, request.params.subject, flag(request.query, 'permanent'))));

  app.delete<{ Params: VersionParams }>('/subjects/:subject/versions/:version', async (request) => {
    const spec = parseVersion(request.params.version);
    return store.execute((s) => deleteVersion(s, request.params.subject, spec, flag(request.query, 'permanent')));
  });

  app.get<{ Params: IdParams }>('/schemas/ids/:id', async (request) =>
    read(() => {
      const stored = storedSchema(request.params.id, readable(request));
      return { ...typeAndReferences(stored), schema: stored.schema };
    }),
  );

  app.get<{ Params: IdParams }>('/schemas/ids/:id/schema', async (request, reply) => raw(reply, (await read(() => storedSchema(request.params.id, readable(request)))).schema));

  app.get<{ Params: IdParams }>('/schemas/ids/:id/versions', async (request) =>
    read(() => {
      const canRead = readable(request);
      const { id } = storedSchema(request.params.id, canRead);
      return state
        .usesOfId(id, flag(request.query, 'deleted'))
        .filter((v) => canRead(v.subject))
        .map((v) => ({ subject: v.subject, version: v.version }));
    }),
  );

  app.get<{ Params: IdParams }>('/schemas/ids/:id/subjects', async (request) =>
    read(() => {
      const canRead = readable(request);
      const { id } = storedSchema(request.params.id, canRead);
      return [...new Set(state.usesOfId(id, flag(request.query, 'deleted')).map((v) => v.subject))].filter(canRead);
    }),
  );

  app.post<{ Params: VersionParams }>('/compatibility/subjects/:subject/versions/:version', async (request) => {
    const spec = parseVersion(request.params.version);
    return read(() => testCompatibility(state, request.params.subject, spec, request.body, flag(request.query, 'verbose'), readable(request)));
  });

  app.post<{ Params: SubjectParams }>('/compatibility/subjects/:subject/versions', async (request) =>
    read(() => testCompatibility(state, request.params.subject, undefined, request.body, flag(request.query, 'verbose'), readable(request))),
  );

  app.get('/config', async () => ({ compatibilityLevel: state.globalCompatibility }));
  app.put('/config', async (request) => store.execute((s) => setConfig(s, null, request.body)));
  app.delete('/config', async () => store.execute((s) => deleteConfig(s, null)));

  app.get<{ Params: SubjectParams }>('/config/:subject', async (request) =>
    read(() => {
      const own = state.subjectCompatibility(request.params.subject);
      if (own !== undefined) return { compatibilityLevel: own };
      if (flag(request.query, 'defaultToGlobal')) return { compatibilityLevel: state.globalCompatibility };
      throw RegistryHttpError.subjectLevelCompatibilityNotConfigured(request.params.subject);
    }),
  );
  app.put<{ Params: SubjectParams }>('/config/:subject', async (request) => store.execute((s) => setConfig(s, request.params.subject, request.body)));
  app.delete<{ Params: SubjectParams }>('/config/:subject', async (request) => store.execute((s) => deleteConfig(s, request.params.subject)));

  app.get('/mode', async () => ({ mode: state.mode }));
  app.put('/mode', async (request) => store.execute((s) => setMode(s, null, request.body, flag(request.query, 'force'))));

  app.get<{ Params: SubjectParams }>('/mode/:subject', async (request) =>
    read(() => {
      const own = state.subjectMode(request.params.subject);
      if (own !== undefined) return { mode: own };
      if (flag(request.query, 'defaultToGlobal')) return { mode: state.mode };
      throw RegistryHttpError.subjectLevelModeNotConfigured(request.params.subject);
    }),
  );
  app.put<{ Params: SubjectParams }>('/mode/:subject', async (request) => store.execute((s) => setMode(s, request.params.subject, request.body, flag(request.query, 'force'))));
  app.delete<{ Params: SubjectParams }>('/mode/:subject', async (request) => store.execute((s) => deleteMode(s, request.params.subject)));

  app.setNotFoundHandler(async (request, reply) => reply.code(404).send({ error_code: 404, message: `HTTP 404 Not Found: no route ${request.method} ${request.url}` }));

  app.setErrorHandler(async (error: FastifyError | RegistryHttpError | Error, request, reply) => {
    reply.type(CONTENT_TYPE);
    if (error instanceof RegistryHttpError) {
      if (error.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'registry request failed');
      return reply.code(error.statusCode).send({ error_code: error.errorCode, message: error.message });
    }
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.code(status).send({ error_code: status, message: error.message });
    }
    request.log.error({ err: error, url: request.url }, 'registry request failed unexpectedly');
    return reply.code(500).send({ error_code: 500, message: `Internal Server Error: ${error.message}` });
  });

  return app;
}
