import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authenticator } from '../../access/authenticate.ts';
import { addToAccessFile, loadAccessFile } from '../../access/file.ts';
import { checkExposure } from '../../access/http.ts';
import { isLoopback } from '../../core/loopback.ts';
import { authorize, parseGrant, type Need, type Principal } from '../../access/permissions.ts';
import { registeredRoutes } from '../../access/plugin.ts';
import { ingressRouteTable, REGISTRY_ROUTES, ruleFor } from '../../access/route-table.ts';
import { verifySecret } from '../../access/secrets.ts';
import { loadConfig } from '../../core/config.ts';
import { AccessFileError, InsecureBindError, UnauthenticatedError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { PRINCIPAL_HEADER } from '../../producers/routes.ts';
import { loadTopology } from '../../topology/load.ts';
import { basic, bearer, writeAccessFile, type TestAccess } from '../support/access.ts';
import { ingressApp } from '../support/ingress-app.ts';

const principal = (...grants: string[]): Principal => ({ name: 'p', grants: grants.map(parseGrant) });

describe('the permission check', () => {
  it.each<[string[], Need, boolean]>([
    [['produce:/v1/orders'], { kind: 'produce', route: '/v1/orders' }, true],
    [['produce:/v1/*'], { kind: 'produce', route: '/v1/orders' }, true],
    [['produce:/v1/orders'], { kind: 'produce', route: '/v1/orders2' }, false],
    [['produce:/v1/orders'], { kind: 'registry:write', subject: 'orders-value' }, false],
    [['registry:write:orders.*'], { kind: 'registry:write', subject: 'orders.placed-value' }, true],
    [['registry:write:orders.*'], { kind: 'registry:read', subject: 'orders.placed-value' }, true],
    [['registry:read:orders.*'], { kind: 'registry:write', subject: 'orders.placed-value' }, false],
    [['registry:read:orders.*'], { kind: 'registry:read', subject: 'payments-value' }, false],
    [['registry:read:orders.*'], { kind: 'registry:read' }, true],
    [['registry:write:*'], { kind: 'registry:admin' }, false],
    [['registry:admin'], { kind: 'registry:write', subject: 'x' }, true],
    [['console:viewer'], { kind: 'console', role: 'operator' }, false],
    [['console:operator'], { kind: 'console', role: 'viewer' }, true],
    [['read:orders.*'], { kind: 'read', topic: 'orders.placed' }, true],
    [['read:orders.*'], { kind: 'read', topic: 'payments' }, false],
    [['*'], { kind: 'registry:admin' }, true],
    [['metrics'], { kind: 'metrics' }, true],
  ])('%j may %j: %s', (grants, need, allowed) => {
    expect(authorize(principal(...grants), [need]).allowed).toBe(allowed);
  });

  it('answers 401 without a principal, 403 with the wrong one, and lets everyone in when open', () => {
    expect(authorize(undefined, [{ kind: 'metrics' }])).toMatchObject({ allowed: false, status: 401 });
    expect(authorize(principal('produce:*'), [{ kind: 'metrics' }])).toMatchObject({ allowed: false, status: 403, reason: 'principal "p" lacks metrics' });
    expect(authorize(undefined, [{ kind: 'public' }]).allowed).toBe(true);
    expect(authorize(undefined, [{ kind: 'registry:admin' }], true).allowed).toBe(true);
  });

  it('globs match whole names, with regex characters taken literally', () => {
    expect(authorize(principal('read:a.b'), [{ kind: 'read', topic: 'aXb' }]).allowed).toBe(false);
    expect(authorize(principal('read:a?c'), [{ kind: 'read', topic: 'abc' }]).allowed).toBe(true);
  });
});

describe('the access file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-access-unit-'));

  it.each([
    ['principals:\n  - name: a\n    allow: [produce]\n', /access\.yaml:3:13: principals\[0\]\.allow\[0\]: "produce" is not a permission/],
    ['principals:\n  - name: a\n    allow: []\n    pasword: x\n', /access\.yaml:4:14: principals\[0\]\.pasword: unknown key "pasword"/],
    ['principals:\n  - name: a\n    password: hunter2\n    allow: []\n', /access\.yaml:3:15: principals\[0\]\.password: "hunter2" is not a scrypt hash/],
    ['principals:\n  - name: a\n    allow: []\n  - name: a\n    allow: []\n', /access\.yaml:4:11: principals\[1\]\.name: principal "a" is declared twice/],
    ['principals: [\n', /access\.yaml:2:1: /],
  ])('names file:line:column of %j', (text, message) => {
    const file = join(dir, 'access.yaml');
    writeFileSync(file, text);
    expect(() => loadAccessFile(file)).toThrow(AccessFileError);
    expect(() => loadAccessFile(file)).toThrow(message);
  });

  it('add-key stores only a hash, keeps the rest of the file, and the printed key signs in', async () => {
    const file = join(dir, 'keys.yaml');
    writeFileSync(file, '# who may do what\nprincipals:\n  - name: alice # the admin\n    allow: ["*"]\n');
    const { key } = await addToAccessFile(file, { name: 'orders-service', allow: ['produce:/v1/orders'], key: true });
    const text = readFileSync(file, 'utf8');
    expect(key).toMatch(/^sk_[a-f0-9]{8}_[A-Za-z0-9_-]{22}$/);
    expect(text).not.toContain(key!.slice(12));
    expect(text).toContain('# the admin');
    const access = loadAccessFile(file);
    const entry = access.principals.find((p) => p.name === 'orders-service')!;
    expect(await verifySecret(key!, entry.keys[0]!.hash)).toBe(true);
    const auth = new Authenticator(access);
    expect((await auth.fromHeader(`Bearer ${key!}`))?.name).toBe('orders-service');
    // A second key for the same principal adds to it.
    await addToAccessFile(file, { name: 'orders-service', allow: ['produce:/v2/*'], key: true });
    const again = loadAccessFile(file).principals.find((p) => p.name === 'orders-service')!;
    expect(again.keys).toHaveLength(2);
    expect(again.grants.map((g) => ('glob' in g ? `${g.kind}:${g.glob}` : g.kind))).toEqual(['produce:/v1/orders', 'produce:/v2/*']);
    // Four scrypt derivations at N=2^17 (deliberately slow): a hang guard, not a timing.
  }, 60_000);

  it('refuses a grant that is not one before writing anything', async () => {
    const file = join(dir, 'bad-grant.yaml');
    await expect(addToAccessFile(file, { name: 'x', allow: ['write:everything'], key: true })).rejects.toThrow(/not a permission/);
    expect(() => readFileSync(file)).toThrow();
  });
});

describe('authentication', () => {
  let access: TestAccess;
  let auth: Authenticator;
  beforeAll(async () => {
    access = await writeAccessFile([
      { name: 'alice', allow: ['*'], password: 'correct horse' },
      { name: 'svc', allow: ['produce:*'] },
    ]);
    auth = new Authenticator(loadAccessFile(access.file));
  });

  it('reads bearer keys, basic passwords and basic keys', async () => {
    expect((await auth.fromHeader(bearer(access.keys.svc!).authorization))?.name).toBe('svc');
    expect((await auth.fromHeader(basic('alice', 'correct horse').authorization))?.name).toBe('alice');
    expect((await auth.fromHeader(basic('svc', access.keys.svc!).authorization))?.name).toBe('svc');
    expect(await auth.fromHeader(undefined)).toBeUndefined();
  });

  it.each([
    ['Bearer sk_00000000_AAAAAAAAAAAAAAAAAAAAAA'],
    ['Basic ' + Buffer.from('alice:wrong').toString('base64')],
    ['Basic ' + Buffer.from('nobody:x').toString('base64')],
    ['Basic bm9jb2xvbg=='],
    ['Bearer a.b.c'],
    ['Digest x'],
  ])(
    'refuses %s',
    async (header) => {
      await expect(auth.fromHeader(header)).rejects.toThrow(UnauthenticatedError);
      // An unknown name is checked against a dummy hash at N=2^17, as slow as a wrong password: a hang guard.
    },
    60_000,
  );

  it("one principal's key is not another's password", async () => {
    await expect(auth.fromHeader(basic('alice', access.keys.svc!).authorization)).rejects.toThrow(UnauthenticatedError);
  });
});

describe('default posture', () => {
  const log = createLogger(loadConfig({ SLUICE_LOG_LEVEL: 'silent' }), 'test');
  it('stays open on loopback, refuses other addresses without an access file unless insecure', () => {
    expect(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost') && isLoopback('127.3.4.5')).toBe(true);
    expect(isLoopback('0.0.0.0') || isLoopback('::') || isLoopback('10.0.0.1')).toBe(false);
    const open = loadConfig({});
    expect(() => checkExposure(open, '127.0.0.1', 'ingress', log)).not.toThrow();
    expect(() => checkExposure(open, '0.0.0.0', 'ingress', log)).toThrow(InsecureBindError);
    expect(() => checkExposure(loadConfig({ SLUICE_INSECURE: 'true' }), '0.0.0.0', 'ingress', log)).not.toThrow();
    expect(() => checkExposure(loadConfig({ SLUICE_ACCESS_FILE: '/x/access.yaml' }), '0.0.0.0', 'ingress', log)).not.toThrow();
  });
});

describe('route table', () => {
  it('every registry route the registry declares has a rule (the registry refuses to start otherwise)', () => {
    for (const key of Object.keys(REGISTRY_ROUTES)) {
      const [method, url] = key.split(' ');
      expect(ruleFor(REGISTRY_ROUTES, method!, url!)).toBeDefined();
    }
    expect(ruleFor(REGISTRY_ROUTES, 'HEAD', '/subjects')).toBe(REGISTRY_ROUTES['GET /subjects']);
    expect(ruleFor(REGISTRY_ROUTES, 'PATCH', '/subjects')).toBeUndefined();
  });
});

const topology = loadTopology(new URL('../../topology/sluice.topology.yaml', import.meta.url).pathname);
const order = {
  orderId: 'o-1',
  customerId: 'c-1',
  items: [{ sku: 'KB-01', quantity: 2, unitPrice: 49.5 }],
  amount: 99,
  currency: 'EUR',
  placedAt: '2026-11-25T10:00:00Z',
};

describe('ingress access, route by route from the route table', () => {
  let access: TestAccess;
  let app: FastifyInstance;
  let sent: Awaited<ReturnType<typeof ingressApp>>['sent'];
  beforeAll(async () => {
    access = await writeAccessFile([
      { name: 'producer', allow: topology.routes.map((r) => `produce:${r.path}`) },
      { name: 'scraper', allow: ['metrics'] },
      { name: 'reader', allow: ['read:*'] },
      { name: 'limited', allow: ['produce:*'], rateLimit: 3 },
    ]);
    const config = loadConfig({ SLUICE_ACCESS_FILE: access.file, SLUICE_LOG_LEVEL: 'silent' });
    ({ app, sent } = await ingressApp(config, topology, createLogger(config, 'test')));
  });
  afterAll(async () => app.close());

  const right: Record<string, string> = { metrics: 'scraper', 'v1/topics/:topic/records': 'reader' };
  const request = (key: string) => {
    const [method, url] = key.split(' ') as ['GET' | 'POST', string];
    return { method, url, ...(method === 'POST' ? { payload: order } : {}) };
  };

  it('covers every route the app registered', () => {
    const table = ingressRouteTable(topology.routes.map((r) => r.path));
    expect([...registeredRoutes.get('ingress')!].sort()).toEqual(Object.keys(table).sort());
  });

  it('without credentials: 401 with a challenge, except health checks', async () => {
    for (const key of registeredRoutes.get('ingress')!) {
      const response = await app.inject(request(key));
      if (key === 'GET /healthz' || key === 'GET /readyz') expect(response.statusCode, key).toBe(200);
      else {
        expect(response.statusCode, key).toBe(401);
        expect(response.headers['www-authenticate'], key).toMatch(/Basic/);
        expect(response.json(), key).toMatchObject({ error: 'SLUICE_UNAUTHENTICATED' });
      }
    }
  });

  it('with the wrong permission: 403; with the right one: 2xx', async () => {
    for (const key of registeredRoutes.get('ingress')!) {
      if (key === 'GET /healthz' || key === 'GET /readyz') continue;
      const rule = ruleFor(ingressRouteTable(topology.routes.map((r) => r.path)), ...(key.split(' ') as [string, string]))!;
      const signedInOnly = rule.needs({ params: {}, query: {} }).every((n) => n.kind === 'authenticated');
      const owner = key.startsWith('POST') ? 'producer' : (right[key.split(' ')[1]!.slice(1)] ?? 'producer');
      const wrong = owner === 'producer' ? 'scraper' : 'producer';
      if (!signedInOnly) {
        const denied = await app.inject({ ...request(key), headers: bearer(access.keys[wrong]!) });
        expect(denied.statusCode, key).toBe(403);
        expect(denied.json(), key).toMatchObject({ error: 'SLUICE_FORBIDDEN' });
      }
      const allowed = await app.inject({ ...request(key), headers: bearer(access.keys[owner]!) });
      expect(allowed.statusCode, `${key}: ${allowed.body}`).toBeLessThan(300);
    }
  });

  it('puts the principal into each record', async () => {
    sent.length = 0;
    const response = await app.inject({ method: 'POST', url: '/v1/orders', payload: order, headers: basic('producer', access.keys.producer!) });
    expect(response.statusCode).toBe(200);
    expect(sent[0]!.headers?.find(([name]) => name === PRINCIPAL_HEADER)?.[1]?.toString()).toBe('producer');
  });

  it('limits each principal to its rate, with 429 and Retry-After', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'POST', url: '/v1/orders', payload: order, headers: bearer(access.keys.limited!) })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await app.inject({ method: 'POST', url: '/v1/orders', payload: order, headers: bearer(access.keys.limited!) });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({ error: 'SLUICE_RATE_LIMITED' });
    // Another principal is not affected.
    expect((await app.inject({ method: 'POST', url: '/v1/orders', payload: order, headers: bearer(access.keys.producer!) })).statusCode).toBe(200);
  });
});

describe('OIDC bearer tokens', () => {
  it('accepts a JWT signed by the JWKS issuer for a principal of the file, and refuses others', async () => {
    const { exportJWK, generateKeyPair, SignJWT } = await import('jose');
    const { createServer } = await import('node:http');
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
      const file = join(mkdtempSync(join(tmpdir(), 'sluice-oidc-')), 'access.yaml');
      writeFileSync(file, 'principals:\n  - name: billing\n    jwtSubject: billing-svc\n    allow: [produce:/v1/*]\n');
      const auth = new Authenticator(loadAccessFile(file), { jwksUrl, issuer: 'https://issuer.test', audience: 'sluice' });
      const token = (sub: string, aud = 'sluice') =>
        new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject(sub).setIssuer('https://issuer.test').setAudience(aud).setExpirationTime('5m').sign(privateKey);
      expect((await auth.fromHeader(`Bearer ${await token('billing-svc')}`))?.name).toBe('billing');
      await expect(auth.fromHeader(`Bearer ${await token('someone-else')}`)).rejects.toThrow(/not a principal of the access file/);
      await expect(auth.fromHeader(`Bearer ${await token('billing-svc', 'other-api')}`)).rejects.toThrow(/invalid token/);
      const other = await generateKeyPair('RS256');
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject('billing-svc')
        .setIssuer('https://issuer.test')
        .setAudience('sluice')
        .setExpirationTime('5m')
        .sign(other.privateKey);
      await expect(auth.fromHeader(`Bearer ${forged}`)).rejects.toThrow(/invalid token/);
      // A token that never expires, or from another issuer, is refused (issue 22).
      const eternal = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('billing-svc').setIssuer('https://issuer.test').setAudience('sluice').sign(privateKey);
      await expect(auth.fromHeader(`Bearer ${eternal}`)).rejects.toThrow(/invalid token: missing required "exp" claim/);
      const foreign = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject('billing-svc')
        .setIssuer('https://elsewhere.test')
        .setAudience('sluice')
        .setExpirationTime('5m')
        .sign(privateKey);
      await expect(auth.fromHeader(`Bearer ${foreign}`)).rejects.toThrow(/invalid token: unexpected "iss"/);
    } finally {
      server.close();
    }
  });

  it('config: a JWKS URL needs an issuer and an audience, and https unless the host is loopback', () => {
    const jwks =
      (url: string, extra: Record<string, string> = { SLUICE_OIDC_ISSUER: 'https://issuer.test', SLUICE_OIDC_AUDIENCE: 'sluice' }) =>
      () =>
        loadConfig({ SLUICE_OIDC_JWKS_URL: url, ...extra });
    expect(jwks('https://issuer.test/jwks.json', {})).toThrow(/SLUICE_OIDC_ISSUER: required with SLUICE_OIDC_JWKS_URL[\s\S]*SLUICE_OIDC_AUDIENCE: required/);
    expect(jwks('https://issuer.test/jwks.json', { SLUICE_OIDC_ISSUER: 'https://issuer.test' })).toThrow(expect.objectContaining({ message: expect.stringMatching(/SLUICE_OIDC_AUDIENCE.*required/) }));
    expect(jwks('http://issuer.test/jwks.json')).toThrow(/SLUICE_OIDC_JWKS_URL.*must be https/);
    expect(jwks('http://127.0.0.1:9999/jwks.json')).not.toThrow();
    expect(jwks('http://localhost:9999/jwks.json')).not.toThrow();
    expect(jwks('https://issuer.test/jwks.json')).not.toThrow();
  });
});
