import type { FastifyPluginAsync } from 'fastify';
import { RegistryError } from '../../core/errors.ts';
import { flag, Lookup, versionBody, type RegistryRouteOptions, type SubjectParams } from './lookup.ts';

/**
 * Confluent's endpoints around data contracts and listing: GET /schemas
 * (every version, filtered and paged), GET /contexts (Sluice has only the
 * default context) and GET /subjects/{subject}/metadata (the latest version
 * whose metadata properties hold every key=value asked).
 */

const query = (q: unknown): Record<string, string | string[] | undefined> => (q ?? {}) as Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const many = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function intParam(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d{1,10}$/.test(raw)) throw RegistryError.invalidSchema(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

const contractRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store, readable }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  app.get('/contexts', async () => ['.']);

  app.get('/schemas', async (request) => {
    const q = query(request.query);
    const prefix = one(q.subjectPrefix) ?? '';
    const deleted = flag(request.query, 'deleted');
    const latestOnly = flag(request.query, 'latestOnly');
    const offset = Math.max(0, intParam(one(q.offset), 'offset', 0));
    const limit = intParam(one(q.limit), 'limit', -1);
    const canRead = readable(request);
    const out = state
      .subjects(deleted)
      .filter((subject) => subject.startsWith(prefix) && canRead(subject))
      .flatMap((subject) => {
        const versions = state.versions(subject, deleted);
        return latestOnly ? versions.slice(-1) : versions;
      })
      .map(versionBody);
    return out.slice(offset, limit < 0 ? undefined : offset + limit);
  });

  app.get<{ Params: SubjectParams }>('/subjects/:subject/metadata', async (request) =>
    lookup.read(() => {
      const { subject } = request.params;
      const q = query(request.query);
      const keys = many(q.key);
      const values = many(q.value);
      if (keys.length !== values.length) throw RegistryError.invalidSchema('key and value must be given in pairs');
      if (!state.hasSubject(subject, flag(request.query, 'deleted'))) throw RegistryError.subjectNotFound(subject);
      const match = state
        .versions(subject, flag(request.query, 'deleted'))
        .filter((v) => keys.every((k, i) => v.metadata?.properties?.[k] === values[i]))
        .at(-1);
      if (!match) throw RegistryError.schemaNotFound(`No version of '${subject}' has metadata ${keys.map((k, i) => `${k}=${values[i]}`).join(', ')}`);
      return versionBody(match);
    }),
  );
};

export default contractRoutes;
