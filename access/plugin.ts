import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, preSerializationHookHandler, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { SignInThrottledError } from './authenticate.ts';
import { accessControl, type AccessControl } from './control.ts';
import { authorize, canReadSubject, type Principal } from './permissions.ts';
import { installSecurityHeaders } from './security-headers.ts';
import { ruleFor, type RequestParts, type RouteRule, type RouteTable } from './route-table.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request; undefined without credentials (or when access is open). */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    access?: RouteRule;
  }
}

/** How a service says no, in its own error-body shape (the registry's is Confluent's). */
export interface Denials {
  badRequest(message: string): Error;
  unauthenticated(message: string): Error;
  forbidden(message: string): Error;
  rateLimited(message: string): Error;
}

/**
 * Who the request is from when it carries no Authorization header (the console's
 * session cookie). `refused`: a principal was found but may not use it for this
 * request (a write from a session without its CSRF token): the request is
 * anonymous, and refused with 403 and this reason where an anonymous one gets 401.
 */
export type AlternativeIdentity = (request: FastifyRequest) => Principal | { refused: string } | undefined;

export interface SecurityOptions {
  service: 'ingress' | 'registry' | 'console';
  config: SluiceConfig;
  logger: Logger;
  routes: RouteTable;
  denials: Denials;
  /** WWW-Authenticate on a 401; none on the console, whose login page a browser prompt would pre-empt. */
  challenge?: string;
  /** Describes a write for its audit line from its answer (the registry adds versions and compatibility). */
  describeWrite?: (request: FastifyRequest, answer: unknown) => Record<string, unknown>;
  identity?: AlternativeIdentity;
  /**
   * The service's own work for every request, before access control (so refusals carry it too): the ingress
   * stamps the correlation id. Runs in the security headers' hook rather than a hook of its own.
   */
  everyRequest?: (request: FastifyRequest, reply: FastifyReply) => void;
}

/** Routes each service registered, by service: what the route-walking test goes through. */
export const registeredRoutes = new Map<string, Set<string>>();

const AUDIT_ANSWER = Symbol('audit answer');

function parts(request: FastifyRequest): RequestParts {
  return { params: (request.params ?? {}) as RequestParts['params'], query: (request.query ?? {}) as RequestParts['query'] };
}

/**
 * The name of a query parameter given more than once, if any. Fastify's parser
 * makes it an array, which a permission check or a route would otherwise read
 * as one joined string (`topic=a&topic=b` as "a,b"): refused, for every route
 * of every service, before anything looks at the query.
 */
export function repeatedParameter(query: unknown): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  return Object.keys(query).find((name) => Array.isArray((query as Record<string, unknown>)[name]));
}

/**
 * Every route needs a rule in the table: registering one without fails at
 * start-up, so no route is ever served unprotected by omission.
 */
function requireRules(app: FastifyInstance, options: SecurityOptions): void {
  const seen = registeredRoutes.get(options.service) ?? new Set<string>();
  registeredRoutes.set(options.service, seen);
  app.addHook('onRoute', (route: RouteOptions) => {
    let audited = false;
    for (const method of [route.method].flat()) {
      const rule = ruleFor(options.routes, method, route.url);
      if (!rule) throw new Error(`${options.service}: route ${method} ${route.url} has no permission in the route table (access/route-table.ts); every route must declare who may call it`);
      route.config = { ...route.config, access: rule };
      audited ||= rule.audit === true;
      if (method !== 'HEAD') seen.add(`${method} ${route.url}`);
    }
    if (audited) audit(route, options);
  });
}

/**
 * Access control for one Fastify app: installed before its routes are declared.
 * Authentication (Authorization header or the console's session), the one
 * permission check, per-principal rate limits, security headers, audit lines.
 */
export function installSecurity(app: FastifyInstance, options: SecurityOptions): AccessControl {
  const control = accessControl(options.config);
  requireRules(app, options);
  app.decorateRequest('principal', undefined);
  const refuseRepeated = (request: FastifyRequest): void => {
    const repeated = repeatedParameter(request.query);
    if (repeated !== undefined) throw options.denials.badRequest(`query parameter ${JSON.stringify(repeated.slice(0, 100))} is given more than once; give it once`);
  };
  const { everyRequest } = options;
  // Open: the query check joins the headers' hook (one hook per request in all); else the access hook runs it.
  const openCheck = everyRequest
    ? (request: FastifyRequest, reply: FastifyReply): void => {
        everyRequest(request, reply);
        refuseRepeated(request);
      }
    : refuseRepeated;
  const also = control.open ? openCheck : everyRequest;
  installSecurityHeaders(app, options.config, also);
  if (control.open) return control;
  void app.register(rateLimit, { global: false });
  void app.register(
    fp(async (instance) => {
      let limiter: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
      const limit = (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
        // Health probes are never limited (see RouteRule.probe).
        if (request.routeOptions.config.access?.probe) return Promise.resolve();
        limiter ??= instance.rateLimit({
          timeWindow: 60_000,
          max: (request: FastifyRequest) => request.principal?.rateLimit ?? options.config.rateLimit,
          // Per principal; without one (anonymous calls of public routes, failed sign-ins) per client address.
          keyGenerator: (request: FastifyRequest) => (request.principal ? `principal:${request.principal.name}` : `address:${request.ip}`),
          allowList: (request: FastifyRequest) => (request.principal?.rateLimit ?? options.config.rateLimit) === 0,
          errorResponseBuilder: (_request: FastifyRequest, context: { max: number; after: string }) =>
            options.denials.rateLimited(`rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`),
        }) as unknown as typeof limiter;
        return limiter!(request, reply);
      };

      instance.addHook('onRequest', async (request, reply) => {
        const rule = request.routeOptions.config.access;
        const header = request.headers.authorization;
        let refused: string | undefined;
        try {
          const found = header === undefined && options.identity ? options.identity(request) : await control.authenticator!.fromHeader(header, request.ip);
          if (found && 'refused' in found) refused = found.refused;
          else request.principal = found;
        } catch (error) {
          if (error instanceof SignInThrottledError) {
            void reply.header('retry-after', String(error.retryAfter));
            throw options.denials.rateLimited(error.message);
          }
          if (options.challenge) reply.header('www-authenticate', options.challenge);
          await limit(request, reply);
          throw options.denials.unauthenticated((error as Error).message);
        }
        await limit(request, reply);
        refuseRepeated(request);
        // A path no route matches still needs credentials: unknown paths tell an anonymous caller nothing.
        const decision = authorize(request.principal, rule ? rule.needs(parts(request)) : [{ kind: 'authenticated' }]);
        if (!decision.allowed) {
          const reason = decision.status === 401 && refused !== undefined ? refused : decision.reason;
          if (decision.status === 401 && refused === undefined) {
            if (options.challenge) reply.header('www-authenticate', options.challenge);
            throw options.denials.unauthenticated(decision.reason);
          }
          options.logger.info({ principal: request.principal?.name, method: request.method, url: request.routeOptions.url, service: options.service }, `access denied: ${reason}`);
          throw options.denials.forbidden(reason);
        }
      });

      instance.addHook('preSerialization', async (request, _reply, payload) => {
        if (!request.routeOptions.config.access?.filterSubjects || !Array.isArray(payload)) return payload;
        return payload.filter((subject) => typeof subject !== 'string' || canReadSubject(request.principal, subject));
      });
    }),
  );
  return control;
}

/**
 * One log line per write: who, what, and the outcome (with the service's own details, e.g. version and id). The
 * hooks are the audited routes' own, so every other request (the ingress's produce requests among them) passes two
 * hooks fewer. Callback hooks: an async hook costs each request a promise.
 */
function audit(route: RouteOptions, options: SecurityOptions): void {
  const capture: preSerializationHookHandler = (request, _reply, payload, done) => {
    (request as unknown as Record<symbol, unknown>)[AUDIT_ANSWER] = payload;
    done(null, payload);
  };
  const log: onResponseHookHandler = (request, reply, done) => {
    auditWrite(request, reply, options);
    done();
  };
  route.preSerialization = [...[route.preSerialization ?? []].flat(), capture];
  route.onResponse = [...[route.onResponse ?? []].flat(), log];
}

function auditWrite(request: FastifyRequest, reply: FastifyReply, options: SecurityOptions): void {
  const rule = request.routeOptions.config.access;
  if (!rule?.audit || request.method === 'GET') return;
  const answer = (request as unknown as Record<symbol, unknown>)[AUDIT_ANSWER];
  const params = request.params as Record<string, string | undefined>;
  options.logger.info(
    {
      audit: options.service,
      principal: request.principal?.name,
      method: request.method,
      route: request.routeOptions.url,
      ...(params.subject === undefined ? {} : { subject: params.subject }),
      status: reply.statusCode,
      ...(reply.statusCode < 400 && options.describeWrite ? options.describeWrite(request, answer) : {}),
    },
    `${options.service} write by ${request.principal?.name ?? 'nobody'}: ${request.method} ${request.url.split('?')[0]} -> ${reply.statusCode}`,
  );
}
