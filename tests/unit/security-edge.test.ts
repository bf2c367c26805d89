import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { secureCookie } from '../../access/console-session.ts';
import { loadConfig } from '../../core/config.ts';
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
