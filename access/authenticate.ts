import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { UnauthenticatedError } from '../core/errors.ts';
import { keyId, type AccessFile, type PrincipalEntry } from './file.ts';
import type { Principal } from './permissions.ts';
import { fingerprint, verifySecret } from './secrets.ts';

/** Config validation (core/config.ts) requires the issuer and audience whenever a JWKS URL is set. */
export interface OidcOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/** Verified (and refused) credentials kept in memory: scrypt is deliberately slow, a request must not be. */
const CACHE_LIMIT = 10_000;

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
  readonly #cache = new Map<string, Principal | null>();
  readonly #internal = new Map<string, { secret: Buffer; principal: Principal }>();
  readonly #jwks: JWTVerifyGetKey | undefined;
  readonly #oidc: OidcOptions | undefined;

  constructor(access: AccessFile, oidc?: OidcOptions) {
    for (const entry of access.principals) {
      this.#byName.set(entry.name, entry);
      for (const key of entry.keys) this.#byKeyId.set(key.id, { entry, hash: key.hash });
      if (entry.jwtSubject !== undefined) this.#bySubject.set(entry.jwtSubject, entry);
    }
    this.#oidc = oidc;
    this.#jwks = oidc ? createRemoteJWKSet(new URL(oidc.jwksUrl)) : undefined;
  }

  /** The principal the header names; undefined without a header; UnauthenticatedError when the credentials are wrong. */
  async fromHeader(header: string | undefined): Promise<Principal | undefined> {
    if (header === undefined || header === '') return undefined;
    const space = header.indexOf(' ');
    const scheme = space < 0 ? header.toLowerCase() : header.slice(0, space).toLowerCase();
    const credential = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer' && credential.split('.').length === 3 && !credential.startsWith('sk_')) return this.#jwt(credential);
    if (scheme !== 'bearer' && scheme !== 'basic') throw new UnauthenticatedError(`unsupported authorization scheme "${scheme.slice(0, 20)}" (use Bearer or Basic)`);
    return this.#cached(`${scheme} ${credential}`, async () => {
      if (scheme === 'bearer') return this.#key(credential);
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return null;
      return this.password(decoded.slice(0, colon), decoded.slice(colon + 1));
    });
  }

  /**
   * A principal that exists only in this process (never in the file), for the
   * services of one `sluice up` to call each other; its secret is random per run.
   */
  addInternal(principal: Principal, secret: string): void {
    this.#internal.set(principal.name, { secret: Buffer.from(secret), principal });
  }

  /** A name and password (or API key) pair, as basic auth and the console's login form send it. */
  async password(name: string, secret: string): Promise<Principal | null> {
    const internal = this.#internal.get(name);
    if (internal) {
      const given = Buffer.from(secret);
      return given.length === internal.secret.length && timingSafeEqual(given, internal.secret) ? internal.principal : null;
    }
    const entry = this.#byName.get(name);
    if (!entry) return null;
    if (entry.password !== undefined && (await verifySecret(secret, entry.password))) return principalOf(entry);
    const byKey = await this.#key(secret);
    return byKey?.name === name ? byKey : null;
  }

  async #key(key: string): Promise<Principal | null> {
    const id = keyId(key);
    const found = id === undefined ? undefined : this.#byKeyId.get(id);
    if (!found || !(await verifySecret(key, found.hash))) return null;
    return principalOf(found.entry);
  }

  async #cached(credential: string, verify: () => Promise<Principal | null>): Promise<Principal> {
    const id = fingerprint(credential);
    let principal = this.#cache.get(id);
    if (principal === undefined) {
      principal = await verify();
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(id, principal);
    }
    if (principal === null) throw new UnauthenticatedError('invalid credentials');
    return principal;
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
