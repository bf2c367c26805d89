import { randomBytes, timingSafeEqual } from 'node:crypto';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SluiceConfig } from '../core/config.ts';
import { ForbiddenError, UnauthenticatedError } from '../core/errors.ts';
import { SignInThrottledError } from './authenticate.ts';
import type { AccessControl } from './control.ts';
import { scheme } from './http.ts';
import { authorize, type Principal } from './permissions.ts';

/**
 * Console sign-in with the access file's principals. The session id lives in an
 * HttpOnly, SameSite=Strict cookie (no script can read it, no other site can
 * send it); anything but a GET must also carry the session's CSRF token in a
 * header, which only the console's own page knows.
 */

export const SESSION_COOKIE = 'sluice_session';
export const CSRF_HEADER = 'x-sluice-csrf';

interface Session {
  principal: Principal;
  csrf: string;
  expires: number;
}

/**
 * Whether the session cookie is `Secure` (SLUICE_CONSOLE_SECURE_COOKIE): by
 * default when the console serves HTTPS itself; `true` behind a proxy that
 * terminates TLS (the console then sees plain HTTP, the browser HTTPS).
 */
export function secureCookie(config: Pick<SluiceConfig, 'consoleSecureCookie' | 'tlsCert' | 'tlsKey'>): boolean {
  return config.consoleSecureCookie === 'auto' ? scheme(config) === 'https' : config.consoleSecureCookie === 'true';
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #ttlMs: number;
  readonly #secure: boolean;

  constructor(options: { ttlMs: number; secure: boolean }) {
    this.#ttlMs = options.ttlMs;
    this.#secure = options.secure;
  }

  #session(request: FastifyRequest): [string, Session] | undefined {
    const id = parseCookie(request.headers.cookie ?? '')[SESSION_COOKIE];
    const session = id === undefined ? undefined : this.#sessions.get(id);
    if (!id || !session) return undefined;
    if (session.expires <= Date.now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return [id, session];
  }

  /**
   * The principal of the request's session (see installSecurity's `identity`).
   * A write without the session's CSRF token has none: it is refused (403)
   * wherever a principal is needed, public routes (the login) still answer it.
   */
  readonly identity = (request: FastifyRequest): Principal | { refused: string } | undefined => {
    const found = this.#session(request);
    if (!found) return undefined;
    if (!SAFE_METHODS.has(request.method)) {
      const token = request.headers[CSRF_HEADER];
      if (typeof token !== 'string') return { refused: `a console write needs the session's CSRF token in the ${CSRF_HEADER} header` };
      if (!same(token, found[1].csrf)) return { refused: `the ${CSRF_HEADER} header is not this session's CSRF token` };
    }
    return found[1].principal;
  };

  #cookie(id: string, maxAgeS: number): string {
    return stringifySetCookie({ name: SESSION_COOKIE, value: id, httpOnly: true, sameSite: 'strict', path: '/', maxAge: maxAgeS, secure: this.#secure });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(id);
  }

  /** GET /api/session, POST /api/login, POST /api/logout. */
  register(app: FastifyInstance, control: AccessControl): void {
    app.get('/api/session', async (request) => {
      if (control.open) return { open: true };
      const found = this.#session(request);
      // Public, so it answers rather than refuses: the page asks for a sign-in when nobody is.
      if (!found) return { open: false, principal: null };
      return { principal: found[1].principal.name, csrf: found[1].csrf, operator: authorize(found[1].principal, [{ kind: 'console', role: 'operator' }]).allowed };
    });

    app.post<{ Body: { name?: unknown; password?: unknown } }>('/api/login', async (request, reply) => {
      if (control.open) return { open: true };
      // JSON only: a cross-site form cannot send it without a preflight the console never grants.
      if (!(request.headers['content-type'] ?? '').startsWith('application/json')) throw new UnauthenticatedError('send the name and password as JSON');
      const { name, password } = request.body ?? {};
      if (typeof name !== 'string' || typeof password !== 'string') throw new UnauthenticatedError('name and password are required');
      const principal = await control.authenticator!.password(name, password, request.ip).catch((error: unknown) => {
        if (error instanceof SignInThrottledError) void reply.header('retry-after', String(error.retryAfter));
        throw error;
      });
      if (!principal) throw new UnauthenticatedError('wrong name or password');
      const decision = authorize(principal, [{ kind: 'console', role: 'viewer' }]);
      if (!decision.allowed) throw new ForbiddenError(decision.reason);
      this.#sweep();
      const id = randomBytes(32).toString('base64url');
      const csrf = randomBytes(32).toString('base64url');
      this.#sessions.set(id, { principal, csrf, expires: Date.now() + this.#ttlMs });
      request.log.info({ principal: principal.name }, 'console sign-in');
      void reply.header('set-cookie', this.#cookie(id, Math.floor(this.#ttlMs / 1000)));
      return { principal: principal.name, csrf, operator: authorize(principal, [{ kind: 'console', role: 'operator' }]).allowed };
    });

    app.post('/api/logout', async (request, reply) => {
      const found = this.#session(request);
      if (found) this.#sessions.delete(found[0]);
      void reply.header('set-cookie', this.#cookie('', 0));
      return { signedOut: true };
    });
  }
}
