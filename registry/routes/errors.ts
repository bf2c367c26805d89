import { RegistryError } from '../../core/errors.ts';
import { failureDetail, type ErrorMapperOptions } from '../../core/http-errors.ts';
import { CONTENT_TYPE } from './body.ts';

/** The error mapper as Confluent answers: `{error_code, message}`, the registry's own codes as they are, other failures by status. */
export const confluentErrors: ErrorMapperOptions = {
  service: 'registry',
  contentType: CONTENT_TYPE,
  levels: { refused: 'debug', transient: 'error' },
  answer(failure) {
    if (failure instanceof RegistryError) return { body: { error_code: failure.errorCode, message: failure.message } };
    if (failure.statusCode < 500) return { body: { error_code: failure.statusCode, message: failure.message } };
    return { status: 500, body: { error_code: 500, message: `Internal Server Error: ${failureDetail(failure)}` } };
  },
  notFound: (request) => new RegistryError(404, `HTTP 404 Not Found: no route ${request.method} ${request.url}`),
};
