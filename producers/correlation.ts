import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The HTTP header a request's correlation id travels in, both ways. */
export const CORRELATION_ID_HEADER = 'x-correlation-id';

const CORRELATION_ID = /^[\x21-\x7e]{1,128}$/;

/** Fastify's genReqId: the caller's X-Correlation-Id when it is printable and short, else a fresh UUID. */
export function correlationIdOf(req: IncomingMessage): string {
  const header = req.headers[CORRELATION_ID_HEADER];
  return typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
}

/**
 * Every answer carries the request's correlation id, refusals too: installSecurity runs this in its first
 * hook, before access control, instead of a hook of its own (each hook costs every request).
 */
export function stampCorrelationId(request: FastifyRequest, reply: FastifyReply): void {
  reply.header(CORRELATION_ID_HEADER, request.id);
}
