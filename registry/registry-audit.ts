import type { FastifyRequest } from 'fastify';
import type { RegistryState } from './state.ts';

/**
 * The registry's part of an audit line: for a registration the version and id
 * it got and the compatibility it was checked under; for other writes what
 * the answer said (versions deleted, the level or mode set).
 */
export function registryWriteDetails(state: RegistryState): (request: FastifyRequest, answer: unknown) => Record<string, unknown> {
  return (request, answer) => {
    const subject = (request.params as { subject?: string }).subject;
    const compatibility = subject === undefined ? state.globalCompatibility : (state.subjectCompatibility(subject) ?? state.globalCompatibility);
    const id = (answer as { id?: unknown } | null)?.id;
    if (request.method === 'POST' && subject !== undefined && typeof id === 'number') {
      const version = state.usesOfId(id, false).find((v) => v.subject === subject)?.version;
      return { id, version, compatibility };
    }
    return { compatibility, result: answer };
  };
}
