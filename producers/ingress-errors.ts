import type { FastifyError, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import type { Counter } from 'prom-client';
import { MalformedBodyError, NotFoundError, PayloadTooLargeError, RuleViolationError, SluiceError, UnsupportedMediaTypeError, ValidationError } from '../core/errors.ts';

const OVERLOADED_RETRY_AFTER_S = 1;

/** Fastify's own errors, as the coded errors every Sluice error body carries. */
export function toSluiceError(error: unknown, bodyLimit: number): SluiceError {
  if (error instanceof SluiceError) return error;
  const e = error as Partial<FastifyError>;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(`body is larger than the limit of ${bodyLimit} bytes`, error);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(`${e.message ?? 'unsupported media type'}; send application/json or application/x-ndjson`, error);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MalformedBodyError(e.message ?? 'malformed body', error);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new SluiceError('SLUICE_BAD_REQUEST', e.message ?? 'bad request', { statusCode: e.statusCode, cause: error });
  }
  return new SluiceError('SLUICE_INTERNAL', 'internal error; see the ingress log for this correlation id', { cause: error });
}

export function errorBody(error: SluiceError): Record<string, unknown> {
  const body: Record<string, unknown> = { error: error.code, message: error.message };
  if (error instanceof ValidationError) {
    body.path = error.violations[0]?.path ?? '';
    body.errors = error.violations.map((v) => (v.index === undefined ? { path: v.path, message: v.message } : { index: v.index, path: v.path, message: v.message }));
  }
  if (error instanceof RuleViolationError) body.errors = error.violations;
  return body;
}

export interface IngressErrorOptions {
  bodyLimit: number;
  produceTimeoutMs: number;
  /** Counts refusals by code (sluice_ingress_rejected_requests_total). */
  rejected: Pick<Counter<'code'>, 'inc'>;
  /** The routes an unknown path's 404 lists. */
  routes: string[];
}

/** The ingress's error bodies, with Retry-After on a 503 and an unknown path's 404 naming the routes there are. */
const ingressErrors: FastifyPluginCallback<IngressErrorOptions> = (app, options, done) => {
  app.setErrorHandler((error, request, reply) => {
    const failure = toSluiceError(error, options.bodyLimit);
    options.rejected.inc({ code: failure.code });
    // request.log already carries the correlation id.
    const context = { method: request.method, url: request.url, code: failure.code, status: failure.statusCode };
    if (failure.statusCode >= 500 && !failure.retryable) request.log.error({ ...context, err: error }, failure.message);
    else request.log.info(context, `request rejected: ${failure.message}`);
    if (failure.statusCode === 503) {
      reply.header('retry-after', String(failure.code === 'SLUICE_OVERLOADED' ? OVERLOADED_RETRY_AFTER_S : Math.max(1, Math.ceil(options.produceTimeoutMs / 1000))));
    }
    return reply.code(failure.statusCode).send(errorBody(failure));
  });

  app.setNotFoundHandler(async (request) => {
    throw new NotFoundError(`no route for ${request.method} ${request.url.split('?')[0]} (routes: ${options.routes.join(', ') || 'none'})`);
  });
  done();
};

export default fp(ingressErrors, { name: 'ingress-errors' });
