import { isUtf8 } from 'node:buffer';
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { RegistryHttpError } from '../../core/errors.ts';
import { JsonTooDeepError, requireJsonDepth } from '../../core/json.ts';

/** The registry's media type: every answer carries it, as Confluent's does. */
export const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const JSON_TYPES = ['application/vnd.schemaregistry.v1+json', 'application/vnd.schemaregistry+json'];

/**
 * Request bodies and the answer's content type. One parser for all three JSON types; an empty body
 * (clients send DELETEs with a content type) is no body; one nested more than `maxDepth` deep
 * (SLUICE_JSON_MAX_DEPTH) is refused before JSON.parse, whose time grows with the depth.
 */
const confluentBody: FastifyPluginCallback<{ maxDepth: number }> = (app, options, done) => {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser([...JSON_TYPES, 'application/json'], { parseAs: 'buffer' }, (_request, body, parsed) => {
    // Decoding invalid UTF-8 would silently store U+FFFD in a schema: refuse it instead.
    if (!isUtf8(body as Buffer)) {
      parsed(new RegistryHttpError(400, 400, 'Malformed JSON request body: not valid UTF-8'), undefined);
      return;
    }
    const text = (body as Buffer).toString('utf8');
    if (text.trim() === '') {
      parsed(null, undefined);
      return;
    }
    try {
      requireJsonDepth(text, options.maxDepth);
      parsed(null, JSON.parse(text));
    } catch (error) {
      const reason = error instanceof JsonTooDeepError ? `the body ${error.message}` : (error as Error).message;
      parsed(new RegistryHttpError(400, 400, `Malformed JSON request body: ${reason}`, error), undefined);
    }
  });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('content-type', CONTENT_TYPE);
  });
  done();
};

export default fp(confluentBody, { name: 'registry-body' });
