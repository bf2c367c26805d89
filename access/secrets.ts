import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Secrets as the access file stores them: only salted scrypt hashes, in the
 * self-describing form `scrypt$N$r$p$<salt>$<hash>` (base64url), so the cost can
 * be raised later without invalidating existing entries.
 */

/**
 * N=2^17, r=8, p=1: OWASP's current minimum for scrypt. One derivation takes 128 * N * r = 128 MiB of memory
 * (maxmem below allows it) and a few hundred ms, which is why verified credentials are cached (authenticate.ts)
 * and failed sign-ins throttled before hashing. Hashes made at the former N=2^14 still verify; `sluice access
 * check` names them so they can be set again.
 */
export const DEFAULT_COST = { N: 2 ** 17, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
const HASH_FORMAT = /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/;

/** API keys start with this, so leak scanners and people recognise them. */
export const KEY_PREFIX = 'sk_';

function derive(secret: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LENGTH, { ...options, maxmem: 256 * options.N! * options.r! }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashSecret(secret: string, cost: { N: number; r: number; p: number } = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(secret, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export function isSecretHash(text: string): boolean {
  return HASH_FORMAT.test(text);
}

/** Whether `secret` is the one `stored` was made from; constant-time in the comparison. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const m = HASH_FORMAT.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64url');
  const actual = await derive(secret, Buffer.from(m[4]!, 'base64url'), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Whether a stored hash was made at a lower cost than new hashes get (true for anything unreadable). */
export function isOutdatedHash(stored: string): boolean {
  const m = HASH_FORMAT.exec(stored);
  return !m || Number(m[1]) < DEFAULT_COST.N || Number(m[2]) < DEFAULT_COST.r;
}

/** `sk_<8 hex: the id stored in the clear>_<22 characters: 128 random bits>`. */
export function generateKey(): string {
  return `${KEY_PREFIX}${randomBytes(4).toString('hex')}_${randomBytes(16).toString('base64url')}`;
}

/**
 * A fingerprint of a presented credential, used only as an in-memory cache key
 * so a verified credential is not re-derived with scrypt on every request.
 */
export function fingerprint(credential: string): string {
  return createHash('sha256').update(credential).digest('base64url');
}
