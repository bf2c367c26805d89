import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SluiceConfig } from '../core/config.ts';

/**
 * The security headers every answer carries (helmet's), computed once at start.
 * @fastify/helmet builds the helmet middleware again for every request (its CSP
 * directives parsed each time: ~10% of the ingress's CPU per single-event request);
 * with no per-request nonce the headers never change, so one object serves all.
 */
export function securityHeaders(config: SluiceConfig): Readonly<Record<string, string>> {
  const options: HelmetOptions = {
    // The APIs serve JSON only, so a strict policy costs nothing; the console's page loads its own files alone.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        // Over plain HTTP, upgrading the page's own requests to HTTPS would break it.
        upgradeInsecureRequests: config.tlsCert === undefined ? null : [],
      },
    },
    // HSTS only means something over HTTPS, and would pin a laptop's http://localhost otherwise.
    hsts: config.tlsCert !== undefined,
  };
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    failure = error;
  });
  if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
  return Object.freeze(headers);
}

/**
 * Sets the headers on every reply, 404s and errors included (before any route runs). `also`: the service's other
 * per-request work of this stage (the ingress's correlation id, the open posture's query check), run in the same
 * hook: each hook costs every request a pass through Fastify's hook runner. What it throws refuses the request.
 */
export function installSecurityHeaders(app: FastifyInstance, config: SluiceConfig, also?: (request: FastifyRequest, reply: FastifyReply) => void): void {
  const headers = securityHeaders(config);
  if (also === undefined) {
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers);
      done();
    });
    return;
  }
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers);
    try {
      also(request, reply);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
}
