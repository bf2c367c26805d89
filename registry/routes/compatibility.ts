import type { FastifyPluginAsync } from 'fastify';
import { parseVersion, testCompatibility } from '../commands.ts';
import { prepareSchemaRequest } from '../schemas.ts';
import { flag, Lookup, type RegistryRouteOptions, type SubjectParams, type VersionParams } from './lookup.ts';

/** /compatibility: whether a schema could be registered, against one version or all the subject's level asks for. */
const compatibilityRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store, readable }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  app.post<{ Params: VersionParams }>('/compatibility/subjects/:subject/versions/:version', async (request) => {
    const spec = parseVersion(request.params.version);
    await prepareSchemaRequest(state, request.body, readable(request), { subject: request.params.subject });
    return lookup.read(() => testCompatibility(state, request.params.subject, spec, request.body, flag(request.query, 'verbose'), readable(request)));
  });

  app.post<{ Params: SubjectParams }>('/compatibility/subjects/:subject/versions', async (request) => {
    await prepareSchemaRequest(state, request.body, readable(request), { subject: request.params.subject });
    return lookup.read(() => testCompatibility(state, request.params.subject, undefined, request.body, flag(request.query, 'verbose'), readable(request)));
  });
};

export default compatibilityRoutes;
