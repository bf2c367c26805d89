import type { FastifyError, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { RegistryHttpError } from '../../core/errors.ts';
import { CONTENT_TYPE } from './body.ts';

/** Confluent's error bodies: `{error_code, message}` for unknown routes, refusals and failures alike. */
const confluentErrors: FastifyPluginCallback = (app, _options, done) => {
  app.setNotFoundHandler(async (request, reply) => reply.code(404).send({ error_code: 404, message: `HTTP 404 Not Found: no route ${request.method} ${request.url}` }));

  app.setErrorHandler(async (error: FastifyError | RegistryHttpError | Error, request, reply) => {
    reply.type(CONTENT_TYPE);
    if (error instanceof RegistryHttpError) {
      if (error.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'registry request failed');
      return reply.code(error.statusCode).send({ error_code: error.errorCode, message: error.message });
    }
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.code(status).send({ error_code: status, message: error.message });
    }
    request.log.error({ err: error, url: request.url }, 'registry request failed unexpectedly');
    return reply.code(500).send({ error_code: 500, message: `Internal Server Error: ${error.message}` });
  });
  done();
};

export default fp(confluentErrors, { name: 'registry-errors' });
