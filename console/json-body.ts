import type { FastifyInstance } from 'fastify';
import { MalformedBodyError } from '../core/errors.ts';
import { JsonTooDeepError, requireJsonDepth } from '../core/json.ts';

/**
 * Fastify's JSON parser (prototype poisoning refused, as by default) behind the depth pre-scan the ingress
 * and the registry run: the login and the dead-letter replay read user JSON, and JSON.parse's time grows with
 * the nesting, so a body nested beyond `maxDepth` is a 400 before it is parsed.
 */
export function registerJsonBodyParser(app: FastifyInstance, maxDepth: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      requireJsonDepth(body as string, maxDepth);
    } catch (error) {
      done(error instanceof JsonTooDeepError ? new MalformedBodyError(`body ${error.message}`, error) : (error as Error), undefined);
      return;
    }
    void parse.call(app, request, body as string, done);
  });
}
