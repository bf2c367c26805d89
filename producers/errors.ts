import { SluiceError } from '../core/errors.ts';

/** HTTP-boundary errors only the ingress raises. */

/** A request body is larger than the configured limit. */
export class PayloadTooLargeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_BODY_TOO_LARGE', message, { statusCode: 413, cause });
  }
}

/** A request body has a content type the endpoint does not read. */
export class UnsupportedMediaTypeError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SLUICE_UNSUPPORTED_MEDIA_TYPE', message, { statusCode: 415, cause });
  }
}

/** No endpoint answers this method and path. */
export class NotFoundError extends SluiceError {
  constructor(message: string) {
    super('SLUICE_NOT_FOUND', message, { statusCode: 404 });
  }
}

/** The ingress is shutting down and takes no more events. */
export class ShuttingDownError extends SluiceError {
  constructor() {
    super('SLUICE_SHUTTING_DOWN', 'the ingress is shutting down; retry against another instance', { retryable: true, statusCode: 503 });
  }
}
