import { ForbiddenError, RateLimitedError, RegistryHttpError, SluiceError, UnauthenticatedError } from '../core/errors.ts';
import type { Denials } from './plugin.ts';

/** 400, 401, 403 and 429 as the ingress and the console answer them: Sluice's coded errors. */
export const SLUICE_DENIALS: Denials = {
  badRequest: (message) => new SluiceError('SLUICE_BAD_REQUEST', message, { statusCode: 400 }),
  unauthenticated: (message) => new UnauthenticatedError(message),
  forbidden: (message) => new ForbiddenError(message),
  rateLimited: (message) => new RateLimitedError(message),
};

/** The same in Confluent's error-body shape ({error_code, message}), which Confluent clients parse. */
export const REGISTRY_DENIALS: Denials = {
  badRequest: (message) => new RegistryHttpError(400, 400, `Bad Request: ${message}`),
  unauthenticated: (message) => new RegistryHttpError(401, 40101, `Unauthorized: ${message}`),
  forbidden: (message) => new RegistryHttpError(403, 40301, `Forbidden: ${message}`),
  rateLimited: (message) => new RegistryHttpError(429, 42901, `Too Many Requests: ${message}`),
};

export const API_CHALLENGE = 'Basic realm="sluice", Bearer realm="sluice"';
