import type { FastifyPluginAsync } from 'fastify';
import { RegistryHttpError } from '../../core/errors.ts';
import { deleteMode, setMode } from '../commands.ts';
import { flag, Lookup, subjectLevel, type RegistryRouteOptions, type SubjectParams } from './lookup.ts';

/** /mode: the global and per-subject modes (READWRITE, READONLY, IMPORT). */
const modeRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app, { store }) => {
  const lookup = new Lookup(store);
  const state = store.state;

  app.get('/mode', async () => ({ mode: state.mode }));
  app.put('/mode', async (request) => store.execute((s) => setMode(s, null, request.body, flag(request.query, 'force'))));

  app.get<{ Params: SubjectParams }>('/mode/:subject', async (request) => {
    const { subject } = request.params;
    return lookup.read(() => ({ mode: subjectLevel(state.subjectMode(subject), state.mode, request.query, () => RegistryHttpError.subjectLevelModeNotConfigured(subject)) }));
  });
  app.put<{ Params: SubjectParams }>('/mode/:subject', async (request) => store.execute((s) => setMode(s, request.params.subject, request.body, flag(request.query, 'force'))));
  app.delete<{ Params: SubjectParams }>('/mode/:subject', async (request) => store.execute((s) => deleteMode(s, request.params.subject)));
};

export default modeRoutes;
