import { BadRequestError, ForbiddenError, RateLimitedError, RegistryError, UnauthenticatedError } from '../core/errors.ts';
import type { Denials } from './plugin.ts';

/** 400, 401, 403 and 429 as the ingress and the console answer them: Sluice's coded errors. */
export const SLUICE_DENIALS: Denials = {
  badRequest: (message) => new BadRequestError(message),
  unauthenticated: (message) => new UnauthenticatedError(message),
  forbidden: (message) => new ForbiddenError(message),
  rateLimited: (message) => new RateLimitedError(message),
};

/** The same in Confluent's error-body shape ({error_code, message}), which Confluent clients parse. */
export const REGISTRY_DENIALS: Denials = {
  badRequest: (message) => new RegistryError(400, `Bad Request: ${message}`),
  unauthenticated: (message) => new RegistryError(40101, `Unauthorized: ${message}`),
  forbidden: (message) => new RegistryError(40301, `Forbidden: ${message}`),
  rateLimited: (message) => new RegistryError(42901, `Too Many Requests: ${message}`),
};

export const API_CHALLENGE = 'Basic realm="sluice", Bearer realm="sluice"';
