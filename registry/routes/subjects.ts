import type { FastifyPluginAsync } from 'fastify';
import { RegistryError } from '../../core/errors.ts';
import { contractFor, deleteSubject, deleteVersion, parseVersion, registerSchema } from '../commands.ts';
import { parseSchemaRequest, prepareSchemaRequest } from '../schemas.ts';
import { flag, formatted, Lookup, raw, versionBody, type RegistryRouteOptions, type SubjectParams, type VersionParams } from './lookup.ts';

/** /subjects: list, look up, register and delete a subject's versions. */
const subjectRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store, readable }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  app.get('/subjects', async (request) => state.subjects(flag(request.query, 'deleted')));

  app.get<{ Params: SubjectParams }>('/subjects/:subject/versions', async (request) =>
    lookup.read(() => {
      const versions = state.versions(request.params.subject, flag(request.query, 'deleted'));
      if (versions.length === 0) throw RegistryError.subjectNotFound(request.params.subject);
      return versions.map((v) => v.version);
    }),
  );

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version', async (request) =>
    lookup.read(() => {
      const entry = lookup.schemaVersion(request.params.subject, request.params.version, flag(request.query, 'deleted'));
      return { ...versionBody(entry), schema: formatted(state, entry, request.query) };
    }),
  );

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version/schema', async (request, reply) => {
    const entry = await lookup.read(() => lookup.schemaVersion(request.params.subject, request.params.version, flag(request.query, 'deleted')));
    return raw(reply, formatted(state, entry, request.query));
  });

  app.post<{ Params: SubjectParams }>('/subjects/:subject/versions', async (request) => {
    await prepareSchemaRequest(state, request.body, readable(request), { subject: request.params.subject, normalize: flag(request.query, 'normalize') });
    return store.execute((s) => registerSchema(s, request.params.subject, request.body, readable(request), flag(request.query, 'normalize')));
  });

  app.post<{ Params: SubjectParams }>('/subjects/:subject', async (request) => {
    const subject = request.params.subject;
    const includeDeleted = flag(request.query, 'deleted');
    await prepareSchemaRequest(state, request.body, readable(request), { normalize: flag(request.query, 'normalize') });
    return lookup.read(() => {
      if (!state.hasSubject(subject, includeDeleted)) throw RegistryError.subjectNotFound(subject);
      const parsed = parseSchemaRequest(state, request.body, { subject, canRead: readable(request), normalize: flag(request.query, 'normalize') });
      const { schema, schemaType, references } = parsed;
      // A look-up without metadata or ruleSet finds the version with the subject's current contract, as a registration would.
      const entry =
        state.findInSubject(subject, schema, schemaType, references, includeDeleted, contractFor(state, subject, parsed)) ??
        state.findInSubject(subject, schema, schemaType, references, includeDeleted, parsed);
      if (!entry) throw RegistryError.schemaNotFound(`Schema not found under subject '${subject}'`);
      return versionBody(entry);
    });
  });

  app.get<{ Params: VersionParams }>('/subjects/:subject/versions/:version/referencedby', async (request) =>
    lookup.read(() => {
      const entry = lookup.schemaVersion(request.params.subject, request.params.version, true);
      return state.referencedBy(entry.subject, entry.version);
    }),
  );

  app.delete<{ Params: SubjectParams }>('/subjects/:subject', async (request) => store.execute((s) => deleteSubject(s, request.params.subject, flag(request.query, 'permanent'))));

  app.delete<{ Params: VersionParams }>('/subjects/:subject/versions/:version', async (request) => {
    const spec = parseVersion(request.params.version);
    return store.execute((s) => deleteVersion(s, request.params.subject, spec, flag(request.query, 'permanent')));
  });
};

export default subjectRoutes;
