import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, FailureThrottle, SignInThrottledError } from '../../access/authenticate.ts';
import { loadAccessFile } from '../../access/file.ts';
import { DEFAULT_COST, isOutdatedHash } from '../../access/secrets.ts';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { basic, bearer, writeAccessFile, type TestAccess } from '../support/access.ts';
import { memoryRegistryApp } from '../support/memory-registry.ts';

/** Failed sign-ins are throttled before any hash is computed, and refused credentials never evict verified ones (issue 22). */
let access: TestAccess;
beforeAll(async () => {
  access = await writeAccessFile([
    { name: 'alice', allow: ['registry:read:*'], password: 'alice-password-1' },
    { name: 'bob', allow: ['registry:read:*'], password: 'bob-password-1' },
  ]);
});

describe('failed sign-ins', () => {
  it('are throttled per name: beyond the limit even the right password is refused (429) until the window ends, without hashing', async () => {
    let now = 0;
    const auth = new Authenticator(loadAccessFile(access.file), undefined, { principal: new FailureThrottle(3, 60_000, 100, () => now), address: new FailureThrottle(100) });
    for (let i = 0; i < 3; i++) expect(await auth.password('alice', 'wrong', `10.0.0.${i}`)).toBeNull();
    await expect(auth.password('alice', 'alice-password-1', '10.0.0.9')).rejects.toEqual(expect.objectContaining({ statusCode: 429, retryAfter: 60 }));
    // Another name is not affected; the window's end lifts it.
    expect((await auth.password('bob', 'bob-password-1', '10.0.0.9'))?.name).toBe('bob');
    now = 60_000;
    expect((await auth.password('alice', 'alice-password-1', '10.0.0.9'))?.name).toBe('alice');
  });

  it('are throttled per address, unknown names included', async () => {
    const auth = new Authenticator(loadAccessFile(access.file), undefined, { principal: new FailureThrottle(100), address: new FailureThrottle(3) });
    for (const name of ['nobody', 'alice', 'bob']) expect(await auth.password(name, 'wrong', '10.1.1.1')).toBeNull();
    await expect(auth.password('bob', 'bob-password-1', '10.1.1.1')).rejects.toBeInstanceOf(SignInThrottledError);
    expect((await auth.password('bob', 'bob-password-1', '10.1.1.2'))?.name).toBe('bob');
    // An unknown name costs two scrypt derivations at N=2^17 (the dummy hash, then its check): a generous bound, not a timing.
  }, 60_000);

  it('a bounded number of names and addresses is remembered', () => {
    const throttle = new FailureThrottle(1, 60_000, 2);
    throttle.fail(['a']);
    throttle.fail(['b']);
    throttle.fail(['c']);
    expect([throttle.wait(['a']), throttle.wait(['b']), throttle.wait(['c'])]).toEqual([0, 60, 60]);
  });

  it('garbage bearer tokens do not evict verified credentials from the cache', async () => {
    const auth = new Authenticator(loadAccessFile(access.file));
    const valid = bearer(access.keys.alice!).authorization!;
    expect((await auth.fromHeader(valid))?.name).toBe('alice');
    for (let i = 0; i < 10_001; i++) await expect(auth.fromHeader(`Bearer sk_00000000_garbage${i}`)).rejects.toThrow(/invalid credentials/);
    expect(auth.isCached(valid)).toBe(true);
  });
});

describe('over HTTP', () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent', SLUICE_ACCESS_FILE: '' });
  let app: ReturnType<typeof memoryRegistryApp>['app'];
  beforeAll(async () => {
    const withFile = loadConfig({ SLUICE_LOG_LEVEL: 'silent', SLUICE_ACCESS_FILE: access.file });
    app = memoryRegistryApp(withFile, createLogger(config, 'sign-in')).app;
    await app.ready();
  });
  afterAll(async () => app?.close());

  it('the registry answers 429 with Retry-After once a name failed too often', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await app.inject({ method: 'GET', url: '/subjects', headers: basic('bob', `wrong-${i}`) })).statusCode);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
    const refused = await app.inject({ method: 'GET', url: '/subjects', headers: basic('bob', 'bob-password-1') });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({ error_code: 42901, message: expect.stringMatching(/too many failed sign-ins/) });
  });
});

describe('scrypt cost', () => {
  it('new hashes use N=2^17, r=8; hashes of the former N=2^14 are reported as outdated', () => {
    expect(DEFAULT_COST).toEqual({ N: 131072, r: 8, p: 1 });
    expect(isOutdatedHash(`scrypt$16384$8$1$${'a'.repeat(22)}$${'b'.repeat(43)}`)).toBe(true);
    expect(isOutdatedHash(`scrypt$131072$8$1$${'a'.repeat(22)}$${'b'.repeat(43)}`)).toBe(false);
  });
});
