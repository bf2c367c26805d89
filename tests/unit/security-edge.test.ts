import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { secureCookie } from '../../access/console-session.ts';
import { cannotProduceTo, parseGrant, type Principal } from '../../access/permissions.ts';
import { Counter, Registry as PromRegistry } from 'prom-client';
import { pageQuery } from '../../console/dead-letters.ts';
import { replayTargets } from '../../consumers/dead-letters.ts';
import { isReservedHeader, refuseReservedHeaders, renameReservedHeaders } from '../../consumers/headers.ts';
import { startMetricsServer } from '../../consumers/metrics-server.ts';
import { loadConfig } from '../../core/config.ts';
import { InsecureBindError, ReservedHeaderError } from '../../core/errors.ts';
import type { ServiceInstance } from '../../discovery/registry.ts';
import { backendsFrom, endpointProblem, warnSkipped } from '../../lb/backends.ts';
import { haproxyConfig } from '../../lb/haproxy-config.ts';
import { nginxConfig } from '../../lb/nginx-config.ts';
import { createLogger } from '../../core/logger.ts';
import { promptHidden } from '../../cli/commands/access.ts';
import type { ReadinessReport } from '../../producers/readiness.ts';
import { loadTopology } from '../../topology/load.ts';
import { bearer, writeAccessFile, type TestAccess } from '../support/access.ts';
import { ingressApp } from '../support/ingress-app.ts';

/** Issue 22's edge findings: limits that spare health probes, repeated parameters, echoed secrets, /readyz details, the password prompt, the console cookie. */

const topology = loadTopology(new URL('../../topology/sluice.topology.yaml', import.meta.url).pathname);
const notReady: ReadinessReport = { ready: false, checks: { broker: { ok: false, error: 'connect ECONNREFUSED 10.1.2.3:9092', checkedAt: '2026-01-01T00:00:00Z' } } };

describe('an ingress with an access file', () => {
  let access: TestAccess;
  let app: FastifyInstance;
  let ready = false;
  const logLines: string[] = [];
  beforeAll(async () => {
    access = await writeAccessFile([
      { name: 'scraper', allow: ['metrics'] },
      { name: 'reader', allow: ['read:*'] },
    ]);
    const config = loadConfig({ SLUICE_ACCESS_FILE: access.file, SLUICE_RATE_LIMIT: '100', SLUICE_LOG_LEVEL: 'info' });
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
    ({ app } = await ingressApp(config, topology, logger, { readiness: { report: async () => (ready ? { ready: true, checks: {} } : notReady) } }));
  });
  afterAll(async () => app.close());

  it('never rate-limits the health probes: after 300 anonymous requests /readyz and /healthz still answer, a limited route is 429 with Retry-After', async () => {
    ready = true;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const { statusCode } = await app.inject({ method: 'GET', url: '/docs' });
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    }
    // The first 100 are answered (401: /docs needs credentials), the rest refused by the limit.
    expect(statuses.get(401)).toBe(100);
    expect(statuses.get(429)).toBe(200);
    const limited = await app.inject({ method: 'GET', url: '/docs' });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({ error: 'SLUICE_RATE_LIMITED' });
    for (let i = 0; i < 150; i++) {
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    }
    // A signed-in caller is limited by its principal, not by the address an anonymous flood exhausted.
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: bearer(access.keys.scraper!) })).statusCode).toBe(200);
  });

  it('the public /readyz says ready or not; why only to a principal allowed metrics', async () => {
    ready = false;
    const anonymous = await app.inject({ method: 'GET', url: '/readyz' });
    expect(anonymous.statusCode).toBe(503);
    expect(anonymous.json()).toEqual({ error: 'SLUICE_NOT_READY', message: 'not ready', status: 'not ready' });
    expect(anonymous.body).not.toContain('10.1.2.3');
    const reader = await app.inject({ method: 'GET', url: '/readyz', headers: bearer(access.keys.reader!) });
    expect(reader.statusCode).toBe(503);
    expect(reader.body).not.toContain('10.1.2.3');
    const scraper = await app.inject({ method: 'GET', url: '/readyz', headers: bearer(access.keys.scraper!) });
    expect(scraper.statusCode).toBe(503);
    expect(scraper.json()).toMatchObject({ error: 'SLUICE_NOT_READY', checks: { broker: { ok: false, error: expect.stringContaining('10.1.2.3') } } });
    expect(scraper.json<{ message: string }>().message).toMatch(/broker/);
    ready = true;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('refuses a repeated query parameter with 400 naming it, before the permission check reads it', async () => {
    const answer = await app.inject({ method: 'GET', url: '/v1/topics/orders.placed/records?from=beginning&from=end', headers: bearer(access.keys.reader!) });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ error: 'SLUICE_BAD_REQUEST', message: expect.stringContaining('"from"') });
  });

  it('never echoes nor logs an Authorization header without a scheme (a bare API key)', async () => {
    const key = access.keys.reader!;
    logLines.length = 0;
    // Another address than the flood's above, whose budget is spent.
    const answer = await app.inject({ method: 'GET', url: '/v1/topics/orders.placed/records', headers: { authorization: key }, remoteAddress: '10.0.0.9' });
    expect(answer.statusCode).toBe(401);
    expect(answer.json()).toMatchObject({ error: 'SLUICE_UNAUTHENTICATED' });
    const secretPart = key.slice(3, 12);
    expect(answer.body).not.toContain(secretPart);
    expect(answer.body).not.toMatch(/sk_/);
    expect(logLines.join('\n')).not.toContain(secretPart);
  });
});

describe('an open ingress (no access file)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
    ({ app } = await ingressApp(config, topology, createLogger(config, 'test'), { readiness: { report: async () => notReady } }));
  });
  afterAll(async () => app.close());

  it('also refuses repeated query parameters', async () => {
    const answer = await app.inject({ method: 'GET', url: '/v1/topics/orders.placed/records?max=1&max=2' });
    expect(answer.statusCode).toBe(400);
    expect(answer.json<{ message: string }>().message).toContain('"max"');
  });

  it('shows the readiness details to anyone (everyone may do everything on loopback)', async () => {
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({ checks: { broker: { ok: false } } });
  });
});

describe('the password prompt of `sluice access add-user`', () => {
  it('does not echo: the terminal is in raw mode while the password is typed, and nothing typed is written', async () => {
    const input = new PassThrough() as unknown as NodeJS.ReadStream & PassThrough;
    const modes: boolean[] = [];
    input.setRawMode = (mode: boolean) => {
      modes.push(mode);
      return input;
    };
    let shown = '';
    const output = new PassThrough();
    output.on('data', (chunk: Buffer) => (shown += chunk.toString()));
    const answer = promptHidden(input, output, 'password: ');
    input.write('hunter22x');
    input.write('\u007fy\r');
    expect(await answer).toBe('hunter22y');
    expect(modes).toEqual([true, false]);
    expect(shown).toBe('password: \n');
  });

  it('Ctrl-C aborts', async () => {
    const input = new PassThrough() as unknown as NodeJS.ReadStream & PassThrough;
    input.setRawMode = () => input;
    const answer = promptHidden(input, new PassThrough(), 'password: ');
    input.write('abc\u0003');
    await expect(answer).rejects.toMatchObject({ code: 'SLUICE_PASSWORD_ABORTED' });
  });
});

describe('the console session cookie', () => {
  it('SLUICE_CONSOLE_SECURE_COOKIE: auto by default, true for a TLS-terminating proxy, refuses other values', () => {
    expect(loadConfig({}).consoleSecureCookie).toBe('auto');
    expect(loadConfig({ SLUICE_CONSOLE_SECURE_COOKIE: 'true' }).consoleSecureCookie).toBe('true');
    expect(() => loadConfig({ SLUICE_CONSOLE_SECURE_COOKIE: 'yes' })).toThrow(/SLUICE_CONSOLE_SECURE_COOKIE/);
    expect(secureCookie(loadConfig({}))).toBe(false);
    expect(secureCookie(loadConfig({ SLUICE_TLS_CERT: '/c.pem', SLUICE_TLS_KEY: '/k.pem' }))).toBe(true);
    expect(secureCookie(loadConfig({ SLUICE_CONSOLE_SECURE_COOKIE: 'true' }))).toBe(true);
    expect(secureCookie(loadConfig({ SLUICE_CONSOLE_SECURE_COOKIE: 'false', SLUICE_TLS_CERT: '/c.pem', SLUICE_TLS_KEY: '/k.pem' }))).toBe(false);
  });
});

describe('load balancer entries from discovery', () => {
  const ingress = (id: string, address: string, port: number): ServiceInstance => ({
    id,
    kind: 'ingress',
    name: 'ingress',
    address,
    port,
    healthUrl: '',
    version: '0.1.0',
    pid: 1,
    startedAt: '2026-01-01T00:00:00Z',
  });

  it('accepts IP literals and DNS hostnames with ports 1-65535, nothing else', () => {
    for (const ok of ['10.0.0.1', '::1', 'fe80::1', 'ingress-1.internal.example', 'localhost']) expect(endpointProblem(ok, 8080), ok).toBeUndefined();
    for (const bad of ['127.0.0.1:9\n    bind 0.0.0.0:1', 'a b', '', '-x.example', 'x..example', `${'a'.repeat(64)}.example`, 'a'.repeat(254), '10.0.0.1;']) {
      expect(endpointProblem(bad, 8080), JSON.stringify(bad)).toMatch(/address/);
    }
    for (const port of [0, -1, 65536, 1.5, Number.NaN]) expect(endpointProblem('10.0.0.1', port), String(port)).toMatch(/port/);
  });

  it('a registration carrying HAProxy or NGINX directives is skipped with a warning naming it; its text is in neither configuration', () => {
    const evil = ingress('evil\n    bind 0.0.0.0:1', '127.0.0.1 check\n    server pwn 6.6.6.6:80\nlisten x\n    bind 0.0.0.0:2', 8080);
    const skipped: [string, string][] = [];
    const backends = backendsFrom([ingress('ingress-h-1-0', '127.0.0.1', 8081), evil, ingress('bad-port', '127.0.0.1', 70_000)], (id, problem) => skipped.push([id, problem]));
    expect(backends).toEqual([{ name: 'ingress-h-1-0', address: '127.0.0.1', port: 8081 }]);
    expect(skipped.map(([id]) => id)).toEqual([evil.id, 'bad-port']);
    for (const cfg of [haproxyConfig({ bindHost: '127.0.0.1', bindPort: 8000, backends }), nginxConfig({ bindHost: '127.0.0.1', bindPort: 8000, backends })]) {
      expect(cfg).not.toMatch(/6\.6\.6\.6|0\.0\.0\.0|pwn|listen x/);
      expect(cfg).toContain('127.0.0.1:8081');
    }
    // An id with unsafe characters (but a good address) becomes a safe, unique server name.
    const names = backendsFrom([ingress('a b', '10.0.0.1', 1), ingress('a\nb', '10.0.0.2', 1)]).map((b) => b.name);
    expect(names).toEqual(['a_b', 'a_b-2']);
  });

  it('warns once per skipped instance, not at every poll', () => {
    const lines: string[] = [];
    const warn = warnSkipped({ warn: (_o, message) => lines.push(message) });
    for (let i = 0; i < 3; i++) backendsFrom([ingress('x', 'not an address', 1)], warn);
    expect(lines).toEqual(['ingress instance "x" in discovery skipped: address is not an IP address or a DNS hostname']);
  });
});

describe('worker metrics (:9464)', () => {
  const metrics = new PromRegistry();
  new Counter({ name: 'sluice_test_metric_total', help: 'a test metric', registers: [metrics] }).inc();
  const silent = createLogger(loadConfig({ SLUICE_LOG_LEVEL: 'silent' }), 'test');

  it('SLUICE_WORKER_METRICS_HOST=0.0.0.0 without an access file is refused, as every listener', async () => {
    const config = loadConfig({ SLUICE_WORKER_METRICS_HOST: '0.0.0.0' });
    await expect(startMetricsServer(metrics, { config, host: config.workerMetricsHost, port: 0 }, silent)).rejects.toThrow(InsecureBindError);
  });

  it('with an access file a scrape needs credentials of a principal allowed metrics', async () => {
    const access = await writeAccessFile([
      { name: 'scraper', allow: ['metrics'] },
      { name: 'reader', allow: ['read:*'] },
    ]);
    const config = loadConfig({ SLUICE_ACCESS_FILE: access.file, SLUICE_WORKER_METRICS_HOST: '0.0.0.0' });
    const server = await startMetricsServer(metrics, { config, host: '127.0.0.1', port: 0 }, silent);
    try {
      const anonymous = await fetch(server.url);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/Basic/);
      expect(await anonymous.text()).not.toContain('sluice_test_metric_total');
      expect((await fetch(server.url, { headers: { authorization: 'Bearer sk_wrong' } })).status).toBe(401);
      const reader = await fetch(server.url, { headers: bearer(access.keys.reader!) });
      expect(reader.status).toBe(403);
      expect(await reader.json()).toMatchObject({ error: 'SLUICE_FORBIDDEN' });
      const scraper = await fetch(server.url, { headers: bearer(access.keys.scraper!) });
      expect(scraper.status).toBe(200);
      expect(await scraper.text()).toContain('sluice_test_metric_total 1');
    } finally {
      await server.close();
    }
  });
});

describe('reserved headers and dead-letter replay targets', () => {
  it('sluice.* and sluice-source are reserved; refusing names them; renaming keeps them under refused-header.', () => {
    expect(['sluice.principal', 'SLUICE.original.topic', 'sluice-source'].every(isReservedHeader)).toBe(true);
    expect(['source', 'correlation-id', 'sluicex', 'traceparent'].some(isReservedHeader)).toBe(false);
    expect(() => refuseReservedHeaders(['source', 'sluice.principal'], 'bridge b')).toThrow(ReservedHeaderError);
    expect(() => refuseReservedHeaders(['source'], 'bridge b')).not.toThrow();
    expect(renameReservedHeaders({ 'sluice.original.topic': 't', source: 's' })).toEqual({ 'refused-header.sluice.original.topic': 't', source: 's' });
  });

  it('a dead-letter topic replays only into the topics whose records dead-letter into it', () => {
    expect(replayTargets(topology, 'orders.placed.dlq')).toEqual(new Set(['orders.placed']));
    expect(replayTargets(topology, 'orders.scored')).toEqual(new Set());
  });

  it('the console pages dead letters: from=<partition>:<offset>, limit 1-200 (default 50); anything else is 400 naming it', () => {
    expect(pageQuery({})).toEqual({ limit: 50 });
    expect(pageQuery({ from: '2:17', limit: '200' })).toEqual({ from: { partition: 2, offset: 17n }, limit: 200 });
    for (const [query, named] of [
      [{ limit: '0' }, 'limit'],
      [{ limit: '201' }, 'limit'],
      [{ from: '1' }, 'from'],
      [{ from: '-1:2' }, 'from'],
      [{ cursor: '1:2' }, 'cursor'],
    ] as const) {
      expect(() => pageQuery(query), JSON.stringify(query)).toThrow(expect.objectContaining({ statusCode: 400, message: expect.stringContaining(named) }));
    }
  });
});

describe('who may write to a topic (a console replay)', () => {
  const p = (...grants: string[]): Principal => ({ name: 'op', grants: grants.map(parseGrant) });
  it('a principal allowed to produce to a route that writes the topic, or *; nobody else', () => {
    expect(cannotProduceTo(p('produce:/v1/orders'), topology.routes, 'orders.placed')).toBeUndefined();
    expect(cannotProduceTo(p('*'), topology.routes, 'orders.scored')).toBeUndefined();
    expect(cannotProduceTo(p('console:operator', 'read:*'), topology.routes, 'orders.placed')).toMatch(/lacks produce:\/v1\/orders/);
    expect(cannotProduceTo(p('produce:*'), topology.routes, 'orders.scored')).toMatch(/lacks \* \(no route writes to orders.scored\)/);
    expect(cannotProduceTo(undefined, topology.routes, 'orders.placed')).toBe('credentials required');
    expect(cannotProduceTo(undefined, topology.routes, 'orders.placed', true)).toBeUndefined();
  });
});
