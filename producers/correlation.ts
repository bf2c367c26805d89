import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';

const CORRELATION_ID = /^[\x21-\x7e]{1,128}$/;

/** Fastify's genReqId: the caller's X-Correlation-Id when it is printable and short, else a fresh UUID. */
export function correlationIdOf(req: IncomingMessage): string {
  const header = req.headers['x-correlation-id'];
  return typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
}

/** Every answer carries the request's correlation id (refusals too: this runs before access control). */
const correlationHeader: FastifyPluginCallback = (app, _options, done) => {
  // Callback hooks, not async ones: each async hook costs every request a promise and a microtask turn.
  app.addHook('onRequest', (request, reply, next) => {
    reply.header('x-correlation-id', request.id);
    next();
  });
  done();
};

export default fp(correlationHeader, { name: 'ingress-correlation' });
