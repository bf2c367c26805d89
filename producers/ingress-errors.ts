import type { Counter } from 'prom-client';
import { NotFoundError, RuleViolationError, ValidationError, type SluiceError } from '../core/errors.ts';
import type { ErrorMapperOptions } from '../core/http-errors.ts';
import { JSON_TYPE, NDJSON_TYPE } from './body-parsers.ts';

/** Retry-After of a 503 SLUICE_OVERLOADED: the queue's expected wait is re-estimated several times a second. */
export const OVERLOADED_RETRY_AFTER_S = 1;

/** The ingress's error body: the code and message, and for invalid events every violation by path (and index in a batch). */
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

/** The error mapper as the ingress answers: counted, Retry-After on a 503, an unknown path's 404 naming the routes there are. */
export function ingressErrors(options: IngressErrorOptions): ErrorMapperOptions {
  return {
    service: 'ingress',
    bodyRules: { bodyLimit: options.bodyLimit, mediaTypes: [JSON_TYPE, NDJSON_TYPE] },
    answer: (failure) => ({ body: errorBody(failure) }),
    levels: { refused: 'info', transient: 'info' },
    onFailure(failure, reply) {
      options.rejected.inc({ code: failure.code });
      if (failure.statusCode === 503) {
        reply.header('retry-after', String(failure.code === 'SLUICE_OVERLOADED' ? OVERLOADED_RETRY_AFTER_S : Math.max(1, Math.ceil(options.produceTimeoutMs / 1000))));
      }
    },
    notFound: (request) => new NotFoundError(`no route for ${request.method} ${request.url.split('?')[0]} (routes: ${options.routes.join(', ') || 'none'})`),
  };
}
