import type { FastifyRequest } from 'fastify';

/**
 * The one hook through which the ingress's routes ask for access. The access
 * model (issue 12) maps each Permission to its own table and throws its 401/403
 * from `check`; until it is merged every request is allowed and every caller is
 * the anonymous principal.
 */

/** Produce to a route (POST), or read a topic (GET /v1/topics/{topic}/records). */
export type Permission = { action: 'produce'; route: string; topic: string } | { action: 'read'; topic: string };

export interface AccessControl {
  /** Throws (a SluiceError with its status) when the request may not do `permission`. */
  check(request: FastifyRequest, permission: Permission): void | Promise<void>;
  /** Who sent the request: part of an idempotency key's scope, so two callers' keys never meet. */
  principal(request: FastifyRequest): string;
}

export const OPEN_ACCESS: AccessControl = {
  check: () => undefined,
  // access/plugin.ts has put the authenticated principal on the request (none on an open laptop ingress).
  principal: (request) => request.principal?.name ?? 'anonymous',
};
