import type { FastifyInstance } from 'fastify';
import { canReadSubject } from '../access/permissions.ts';
import type { RegistryClient } from '../core/registry-client.ts';

interface SubjectSummary {
  subject: string;
  versions: number[];
  compatibility: string;
}

const path = (subject: string) => `/subjects/${encodeURIComponent(subject)}`;

/**
 * Subjects, versions and compatibility, read from the schema registry the
 * platform uses. The console asks with its own credentials, so it lists only
 * the subjects the viewer may read (`registry:read`), as the registry would.
 */
export function registerSchemaRoutes(app: FastifyInstance, registry: RegistryClient, access: { open: boolean }): void {
  const compatibility = async (subject: string): Promise<string> => {
    const config = await registry.request<{ compatibilityLevel?: string; compatibility?: string }>('GET', `/config/${encodeURIComponent(subject)}?defaultToGlobal=true`);
    return config.compatibilityLevel ?? config.compatibility ?? 'BACKWARD';
  };

  app.get('/api/schemas', async (request): Promise<SubjectSummary[]> => {
    const subjects = (await registry.request<string[]>('GET', '/subjects')).filter((subject) => canReadSubject(request.principal, subject, access.open)).sort();
    return Promise.all(
      subjects.map(async (subject) => ({
        subject,
        versions: await registry.request<number[]>('GET', `${path(subject)}/versions`),
        compatibility: await compatibility(subject),
      })),
    );
  });

  app.get<{ Params: { subject: string; version: string } }>('/api/schemas/:subject/versions/:version', async (request) =>
    registry.request<{ subject: string; version: number; id: number; schema: string }>('GET', `${path(request.params.subject)}/versions/${encodeURIComponent(request.params.version)}`),
  );
}
