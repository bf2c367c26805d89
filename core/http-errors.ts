import type { FastifyBaseLogger, FastifyError, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { MalformedBodyError, PayloadTooLargeError, SluiceError, UnsupportedMediaTypeError } from './errors.ts';

/**
 * The one error mapper of Sluice's HTTP services (ingress, registry, console):
 * whatever a route, hook or parser threw becomes a coded SluiceError, whose
 * status is the catalogue's (core/errors.ts), and each service only says how
 * its wire format writes one.
 */

/** What a service adds to Fastify's own words for a refused body. */
export interface BodyRules {
  bodyLimit: number;
  mediaTypes: readonly string[];
}

/**
 * Any error at an HTTP boundary as the coded error answered: Sluice's pass
 * through, Fastify's get a code, anything else (a programming error) is
 * SLUICE_INTERNAL, whose message says where to look rather than what broke.
 */
export function httpFailure(error: unknown, service: string, rules?: BodyRules): SluiceError {
  if (error instanceof SluiceError) return error;
  const e = error as Partial<FastifyError>;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(rules ? `body is larger than the limit of ${rules.bodyLimit} bytes` : (e.message ?? 'body too large'), error);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(`${e.message ?? 'unsupported media type'}${rules ? `; send ${rules.mediaTypes.join(' or ')}` : ''}`, error);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MalformedBodyError(e.message ?? 'malformed body', error);
  }
  // Fastify's other refusals keep the status it gave them (a framework's 4xx, not a code of ours).
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new SluiceError('SLUICE_BAD_REQUEST', e.message ?? 'bad request', { statusCode: e.statusCode, cause: error });
  }
  return new SluiceError('SLUICE_INTERNAL', `internal error; see the ${service} log for this correlation id`, { cause: error });
}

/** The message of what actually failed: an internal error's cause, else the error itself. */
export function failureDetail(failure: SluiceError): string {
  return failure.code === 'SLUICE_INTERNAL' && failure.cause instanceof Error ? failure.cause.message : failure.message;
}

/** Where a failure's extra headers go: Fastify's reply, or the ingress's direct path's list (producers/direct-produce.ts). */
export interface FailureHeaders {
  header(name: string, value: string): unknown;
}

export interface ErrorMapperOptions {
  /** Names the service in log lines and in SLUICE_INTERNAL's message. */
  service: string;
  bodyRules?: BodyRules;
  /** The service's wire format: the body, and the status when that format answers another than the catalogue's. */
  answer(failure: SluiceError): { status?: number; body: unknown };
  contentType?: string;
  /** Log levels: of refusals (4xx), and of 5xx worth retrying (a broker down); other 5xx are always errors. */
  levels: { refused: 'debug' | 'info'; transient: 'debug' | 'info' | 'error' };
  /** Per failure, before the answer: counters, headers such as Retry-After. */
  onFailure?(failure: SluiceError, reply: FailureHeaders): void;
  /** An unknown path's error; without it Fastify's default 404. */
  notFound?(request: FastifyRequest): SluiceError;
}

/** The request a failure is logged with: `log` carries the correlation id where the service has one. */
export interface FailedRequest {
  method: string;
  url: string;
  log: Pick<FastifyBaseLogger, 'error' | 'info' | 'debug'>;
}

/**
 * What the error mapper answers `error` with: counted and its headers set (onFailure), logged, and the status and
 * body of the service's wire format. The Fastify error handler's, and the ingress's direct path's, which answers
 * before Fastify (producers/direct-produce.ts) and must refuse exactly as the routes do.
 */
export function answerFailure(options: ErrorMapperOptions, error: unknown, request: FailedRequest, headers: FailureHeaders): { status: number; body: unknown } {
  const failure = httpFailure(error, options.service, options.bodyRules);
  options.onFailure?.(failure, headers);
  const { status = failure.statusCode, body } = options.answer(failure);
  const context = { method: request.method, url: request.url, code: failure.code, status };
  const level = status < 500 ? options.levels.refused : failure.retryable ? options.levels.transient : 'error';
  if (level === 'error') request.log.error({ ...context, err: error }, `${options.service} request failed: ${failureDetail(failure)}`);
  else request.log[level](context, `request rejected: ${failure.message}`);
  return { status, body };
}

const errorMapper: FastifyPluginCallback<ErrorMapperOptions> = (app, options, done) => {
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = answerFailure(options, error, request, reply);
    if (options.contentType) reply.type(options.contentType);
    return reply.code(status).send(body);
  });
  const notFound = options.notFound;
  if (notFound) {
    app.setNotFoundHandler(async (request) => {
      throw notFound(request);
    });
  }
  done();
};

export default fp(errorMapper, { name: 'sluice-error-mapper' });
