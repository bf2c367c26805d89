import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { RateLimitedError, UnauthenticatedError } from '../core/errors.ts';
import { keyId, type AccessFile, type PrincipalEntry } from './file.ts';
import type { Principal } from './permissions.ts';
import { fingerprint, hashSecret, verifySecret } from './secrets.ts';

/** Config validation (core/config.ts) requires the issuer and audience whenever a JWKS URL is set. */
export interface OidcOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/**
 * Verified credentials kept in memory: scrypt is deliberately slow, a request must not be. Only successes are
 * kept: caching refusals let a stream of garbage tokens evict every valid entry. Refusals cost nothing for a
 * key id no principal has (no hash is computed) and are throttled otherwise.
 */
const CACHE_LIMIT = 10_000;

/** A sign-in refused because of earlier failures (429); `retryAfter` in seconds. */
export class SignInThrottledError extends RateLimitedError {
  readonly retryAfter: number;
  constructor(retryAfter: number) {
    super(`too many failed sign-ins; retry in ${retryAfter} s`);
    this.retryAfter = retryAfter;
  }
}

/**
 * Failed sign-ins per principal name and per client address, checked before any hash is computed: beyond
 * `max` failures within `windowMs` of the first, further attempts are refused without hashing until the
 * window ends. Bounded: at most `limit` keys, the oldest dropped first.
 */
export class FailureThrottle {
  readonly #failures = new Map<string, { count: number; until: number }>();
  readonly max: number;
  readonly windowMs: number;
  readonly limit: number;
  readonly now: () => number;
  constructor(max = 10, windowMs = 5 * 60_000, limit = 10_000, now: () => number = Date.now) {
    this.max = max;
    this.windowMs = windowMs;
    this.limit = limit;
    this.now = now;
  }

  /** Seconds until `keys` may try again; 0 when none is throttled. */
  wait(keys: readonly string[]): number {
    let wait = 0;
    for (const key of keys) {
      const entry = this.#failures.get(key);
      if (!entry) continue;
      if (entry.until <= this.now()) this.#failures.delete(key);
      else if (entry.count >= this.max) wait = Math.max(wait, Math.ceil((entry.until - this.now()) / 1000));
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    for (const key of keys) {
      const entry = this.#failures.get(key);
      if (entry && entry.until > this.now()) entry.count += 1;
      else {
        this.#failures.delete(key);
        if (this.#failures.size >= this.limit) this.#failures.delete(this.#failures.keys().next().value!);
        this.#failures.set(key, { count: 1, until: this.now() + this.windowMs });
      }
    }
  }
}

function principalOf(entry: PrincipalEntry): Principal {
  return { name: entry.name, grants: entry.grants, ...(entry.rateLimit === undefined ? {} : { rateLimit: entry.rateLimit }) };
}

/**
 * Turns an Authorization header into a principal of the access file:
 * `Bearer <API key>`, `Bearer <JWT>` (when an OIDC issuer is configured), or
 * `Basic <name:password>` where the password is the principal's password or
 * one of its API keys (Confluent clients send USER_INFO credentials this way).
 */
export class Authenticator {
  readonly #byName = new Map<string, PrincipalEntry>();
  readonly #byKeyId = new Map<string, { entry: PrincipalEntry; hash: string }>();
  readonly #bySubject = new Map<string, PrincipalEntry>();
  readonly #cache = new Map<string, Principal>();
  readonly #byPrincipal: FailureThrottle;
  /** Looser: behind a proxy every client shares one address. */
  readonly #byAddress: FailureThrottle;
  /** Verified against for names no principal has, so their refusal takes as long as a wrong password's. */
  #dummyHash: Promise<string> | undefined;
  readonly #internal = new Map<string, { secret: Buffer; principal: Principal }>();
  readonly #jwks: JWTVerifyGetKey | undefined;
  readonly #oidc: OidcOptions | undefined;

  constructor(access: AccessFile, oidc?: OidcOptions, throttles = { principal: new FailureThrottle(10), address: new FailureThrottle(100) }) {
    this.#byPrincipal = throttles.principal;
    this.#byAddress = throttles.address;
    for (const entry of access.principals) {
      this.#byName.set(entry.name, entry);
      for (const key of entry.keys) this.#byKeyId.set(key.id, { entry, hash: key.hash });
      if (entry.jwtSubject !== undefined) this.#bySubject.set(entry.jwtSubject, entry);
    }
    this.#oidc = oidc;
    this.#jwks = oidc ? createRemoteJWKSet(new URL(oidc.jwksUrl)) : undefined;
  }

  /**
   * The principal the header names; undefined without a header; UnauthenticatedError when the credentials are
   * wrong, SignInThrottledError after too many failures for the name or from `address`.
   */
  async fromHeader(header: string | undefined, address?: string): Promise<Principal | undefined> {
    if (header === undefined || header === '') return undefined;
    const space = header.indexOf(' ');
    const scheme = space < 0 ? header.toLowerCase() : header.slice(0, space).toLowerCase();
    const credential = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer' && credential.split('.').length === 3 && !credential.startsWith('sk_')) return this.#jwt(credential);
    // Never echoed: a header without a scheme is usually the secret itself (`Authorization: sk_...`).
    if (scheme !== 'bearer' && scheme !== 'basic') throw new UnauthenticatedError('unsupported authorization scheme (use Bearer <key or token>, or Basic)');
    const cached = this.#cache.get(fingerprint(`${scheme} ${credential}`));
    if (cached) return cached;
    let principal: Principal | null;
    if (scheme === 'bearer') principal = await this.#throttled(keyId(credential) ?? '', address, () => this.#key(credential));
    else {
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      principal = colon < 0 ? null : await this.password(decoded.slice(0, colon), decoded.slice(colon + 1), address);
    }
    if (principal === null) throw new UnauthenticatedError('invalid credentials');
    this.#remember(`${scheme} ${credential}`, principal);
    return principal;
  }

  /** Whether the header's credentials are in the cache of verified ones (what garbage must not evict). */
  isCached(header: string): boolean {
    const space = header.indexOf(' ');
    return this.#cache.has(fingerprint(`${header.slice(0, space).toLowerCase()} ${header.slice(space + 1).trim()}`));
  }

  #remember(credential: string, principal: Principal): void {
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(fingerprint(credential), principal);
  }

  /** Runs a verification unless `who` (a name or key id) or `address` failed too often; counts its failure. */
  async #throttled(who: string, address: string | undefined, verify: () => Promise<Principal | null>): Promise<Principal | null> {
    const names = who === '' ? [] : [who];
    const addresses = address === undefined ? [] : [address];
    const wait = Math.max(this.#byPrincipal.wait(names), this.#byAddress.wait(addresses));
    if (wait > 0) throw new SignInThrottledError(wait);
    const principal = await verify();
    if (principal === null) {
      this.#byPrincipal.fail(names);
      this.#byAddress.fail(addresses);
    }
    return principal;
  }

  /**
   * A principal that exists only in this process (never in the file), for the
   * services of one `sluice up` to call each other; its secret is random per run.
   */
  addInternal(principal: Principal, secret: string): void {
    this.#internal.set(principal.name, { secret: Buffer.from(secret), principal });
  }

  /**
   * A name and password (or API key) pair, as basic auth and the console's login form send it. Throttled per
   * name and per `address` before any hash is computed; an unknown name costs the same hash as a known one.
   */
  async password(name: string, secret: string, address?: string): Promise<Principal | null> {
    const internal = this.#internal.get(name);
    if (internal) {
      const given = Buffer.from(secret);
      return given.length === internal.secret.length && timingSafeEqual(given, internal.secret) ? internal.principal : null;
    }
    return this.#throttled(name, address, async () => {
      const entry = this.#byName.get(name);
      if (!entry) {
        this.#dummyHash ??= hashSecret('not a password of anyone');
        await verifySecret(secret, await this.#dummyHash);
        return null;
      }
      if (entry.password !== undefined && (await verifySecret(secret, entry.password))) return principalOf(entry);
      const byKey = await this.#key(secret);
      return byKey?.name === name ? byKey : null;
    });
  }

  async #key(key: string): Promise<Principal | null> {
    const id = keyId(key);
    const found = id === undefined ? undefined : this.#byKeyId.get(id);
    if (!found || !(await verifySecret(key, found.hash))) return null;
    return principalOf(found.entry);
  }

  async #jwt(token: string): Promise<Principal> {
    if (!this.#jwks || !this.#oidc) throw new UnauthenticatedError('invalid credentials (JWTs are not accepted: no OIDC issuer is configured)');
    let sub: string | undefined;
    try {
      // A token without `exp` would never expire: required, as are the configured `iss` and `aud`.
      const { payload } = await jwtVerify(token, this.#jwks, { issuer: this.#oidc.issuer, audience: this.#oidc.audience, requiredClaims: ['exp'] });
      sub = payload.sub;
    } catch (error) {
      throw new UnauthenticatedError(`invalid token: ${(error as Error).message}`);
    }
    const entry = sub === undefined ? undefined : this.#bySubject.get(sub);
    if (!entry) throw new UnauthenticatedError(`token subject ${JSON.stringify(sub ?? null)} is not a principal of the access file`);
    return principalOf(entry);
  }
}
