import type { FastifyPluginAsync } from 'fastify';
import { contractOf } from '../state.ts';
import { flag, formatted, Lookup, raw, typeAndReferences, type IdParams, type RegistryRouteOptions } from './lookup.ts';

/** /schemas: the supported types and look-ups by id, each only through a subject the caller may read. */
const schemaRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store, readable }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  app.get('/schemas/types', async () => ['JSON', 'PROTOBUF', 'AVRO']);

  app.get<{ Params: IdParams }>('/schemas/ids/:id', async (request) =>
    lookup.read(() => {
      const stored = lookup.storedSchema(request.params.id, readable(request));
      return { ...typeAndReferences(stored), ...contractOf(stored), schema: formatted(state, stored, request.query) };
    }),
  );

  app.get<{ Params: IdParams }>('/schemas/ids/:id/schema', async (request, reply) =>
    raw(reply, formatted(state, await lookup.read(() => lookup.storedSchema(request.params.id, readable(request))), request.query)),
  );

  app.get<{ Params: IdParams }>('/schemas/ids/:id/versions', async (request) =>
    lookup.read(() => {
      const canRead = readable(request);
      const { id } = lookup.storedSchema(request.params.id, canRead);
      return state
        .usesOfId(id, flag(request.query, 'deleted'))
        .filter((v) => canRead(v.subject))
        .map((v) => ({ subject: v.subject, version: v.version }));
    }),
  );

  app.get<{ Params: IdParams }>('/schemas/ids/:id/subjects', async (request) =>
    lookup.read(() => {
      const canRead = readable(request);
      const { id } = lookup.storedSchema(request.params.id, canRead);
      return [...new Set(state.usesOfId(id, flag(request.query, 'deleted')).map((v) => v.subject))].filter(canRead);
    }),
  );
};

export default schemaRoutes;
