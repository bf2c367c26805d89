import type { FastifyPluginAsync } from 'fastify';
import { RegistryError } from '../../core/errors.ts';
import { deleteConfig, setConfig } from '../commands.ts';
import { Lookup, subjectLevel, type RegistryRouteOptions, type SubjectParams } from './lookup.ts';

/** /config: the global and per-subject compatibility levels. */
const configRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  /** GET answers `compatibilityLevel` and any contract keys set, as Confluent does. */
  const contractKeys = (subject: string | null) => {
    const { compatibilityLevel: _level, ...rest } = state.configValue(subject) ?? {};
    return rest;
  };
  app.get('/config', async () => ({ compatibilityLevel: state.globalCompatibility, ...contractKeys(null) }));
  app.put('/config', async (request) => store.execute((s) => setConfig(s, null, request.body)));
  app.delete('/config', async () => store.execute((s) => deleteConfig(s, null)));

  app.get<{ Params: SubjectParams }>('/config/:subject', async (request) => {
    const { subject } = request.params;
    const notConfigured = () => RegistryError.subjectLevelCompatibilityNotConfigured(subject);
    return lookup.read(() => {
      const own = state.configValue(subject) === undefined ? undefined : (state.subjectCompatibility(subject) ?? state.globalCompatibility);
      return { compatibilityLevel: subjectLevel(own, state.globalCompatibility, request.query, notConfigured), ...contractKeys(subject) };
    });
  });
  app.put<{ Params: SubjectParams }>('/config/:subject', async (request) => store.execute((s) => setConfig(s, request.params.subject, request.body)));
  app.delete<{ Params: SubjectParams }>('/config/:subject', async (request) => store.execute((s) => deleteConfig(s, request.params.subject)));
};

export default configRoutes;
