import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';

/**
 * A request in flight when close starts keeps its keep-alive connection open
 * afterwards, and Fastify's close waits for that connection (up to the 72 s
 * keep-alive timeout); telling the client to close it lets shutdown finish.
 */
const closeConnectionsWhileDraining: FastifyPluginCallback<{ draining: () => boolean }> = (app, options, done) => {
  app.addHook('onSend', (_request, reply, payload, next) => {
    if (options.draining()) reply.header('connection', 'close');
    next(null, payload);
  });
  done();
};

export default fp(closeConnectionsWhileDraining, { name: 'ingress-draining' });
