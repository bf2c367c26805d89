import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { chromium, type Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustConfiguredCa } from '../../access/http.ts';
import { authorize, parseGrant } from '../../access/permissions.ts';
import { registeredRoutes } from '../../access/plugin.ts';
import { CONSOLE_ROUTES, ingressRouteTable, REGISTRY_ROUTES, ruleFor, type RouteTable } from '../../access/route-table.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startConsole, type RunningConsole } from '../../console/server.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { PRINCIPAL_HEADER } from '../../producers/routes.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { basic, bearer, writeAccessFile, type TestAccess } from '../support/access.ts';
import { orderTopology } from '../support/order-topology.ts';
import { randomOrder } from '../support/orders.ts';
import { createTopics, readTopics, testConfig, uniqueName } from '../support/platform.ts';

/**
 * The three HTTP services as an operator deploys them: an access file, TLS with
 * a test CA, the real broker. Every registered route is walked from the route
 * table; Confluent's client registers with basic auth; the console is signed
 * into in chromium; and nothing logged holds a key or a password.
 */

const topic = uniqueName('orders.placed-access');
const subject = `${topic}-value`;
const dir = mkdtempSync(join(tmpdir(), 'sluice-access-it-'));
const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

const PASSWORDS = { admin: 'admin-password-1', viewer: 'viewer-password-1', writer: 'writer-password-1', lost: 'lost-password-1' };
let access: TestAccess;
let registry: RunningRegistry;
let ingress: Ingress;
let console_: RunningConsole;
let schemaId: number;

/** A CA and a server certificate for 127.0.0.1 and localhost, made with openssl. */
function makeCertificates(): { ca: string; cert: string; key: string } {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=Sluice test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext);
  return { ca, cert, key };
}

const withRegistryCredentials = (url: string, user: string, password: string): string => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString().replace(/\/$/, '');
};

beforeAll(async () => {
  access = await writeAccessFile(
    [
      { name: 'admin', allow: ['*'], password: PASSWORDS.admin },
      { name: 'producer', allow: ['produce:/v1/orders'] },
      { name: 'writer', allow: [`registry:write:${topic}*`], password: PASSWORDS.writer },
      { name: 'viewer', allow: ['console:viewer', 'read:*'], password: PASSWORDS.viewer },
      // Signed in, allowed nothing: the "wrong permission" of every route.
      { name: 'lost', allow: ['read:no-such-topic'], password: PASSWORDS.lost },
    ],
    dir,
  );
  const tls = makeCertificates();
  const base = testConfig({ accessFile: access.file, tlsCert: tls.cert, tlsKey: tls.key, tlsCa: tls.ca, logLevel: 'info' });
  trustConfiguredCa(base);
  // A broker started for this run may still be electing its first leaders.
  for (let attempt = 1; ; attempt++) {
    try {
      await createTopics([{ topic, numPartitions: 1 }]);
      break;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  registry = await startRegistry({ config: base, logger, port: 0 });
  const registryUrl = withRegistryCredentials(registry.url, 'admin', PASSWORDS.admin);
  const config = testConfig({ accessFile: access.file, tlsCert: tls.cert, tlsKey: tls.key, tlsCa: tls.ca, registryUrl, registryTopic: base.registryTopic, logLevel: 'info' });
  ingress = await startIngress({ config, logger, topology: orderTopology(topic, 1), registry: new RegistryClient(registryUrl), port: 0 });
  console_ = await startConsole({ config, logger, port: 0 });
  schemaId = (await new RegistryClient(registryUrl).latest(subject)).id;
});

afterAll(async () => {
  await console_?.close();
  await ingress?.close();
  await registry?.close();
});

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

/** A request to a route with real parameters, so the right principal gets a 2xx. */
function sample(key: string): Call {
  const [method, url] = key.split(' ') as [string, string];
  const scratch = `${topic}-scratch-${Math.random().toString(36).slice(2, 8)}`;
  const path = url
    .replace(':subject', method === 'DELETE' ? scratch : subject)
    .replace(':version', method === 'DELETE' ? '1' : 'latest')
    .replace(':id', url.startsWith('/api/groups') ? 'no-such-group' : String(schemaId))
    .replace(':name', topic)
    .replace(':topic', topic);
  // The subject's own schema: registering it again, looking it up and testing it all succeed.
  const schema = JSON.stringify(orderTopology(topic, 1).topics[0]!.valueSchema!.schema);
  let body: unknown;
  if (url === '/v1/orders') body = randomOrder();
  else if (url === '/api/login') body = { name: 'viewer', password: PASSWORDS.viewer };
  else if (url.startsWith('/subjects') || url.startsWith('/compatibility')) body = { schema };
  else if (url.startsWith('/config')) body = { compatibility: 'BACKWARD' };
  else if (url.startsWith('/mode')) body = { mode: 'READWRITE' };
  const query = url === '/api/tail' ? `?topic=${topic}` : (url === '/config/:subject' || url === '/mode/:subject') && method === 'GET' ? '?defaultToGlobal=true' : '';
  return { method, path: `${path}${query}`, ...(body === undefined || method === 'GET' ? {} : { body }) };
}

async function send(base: string, call: Call, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(`${base}${call.path}`, {
    method: call.method,
    headers: { ...headers, ...(call.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    signal: AbortSignal.timeout(10_000),
  });
  // A live tail (console, HTTP read path) is a stream that never ends: its status is all there is to check.
  const stream = call.path.startsWith('/api/tail') || call.path.startsWith('/v1/topics/');
  const body = stream ? '' : await response.text();
  if (stream) await response.body?.cancel();
  return { status: response.status, body, headers: response.headers };
}

/** Creates what a DELETE of `call` removes, so the right principal's DELETE finds it. */
async function prepare(call: Call): Promise<void> {
  const admin = basic('admin', PASSWORDS.admin);
  const scratch = /\/subjects\/([^/]+)/.exec(call.path)?.[1];
  if (call.method === 'DELETE' && scratch) {
    await send(registry.url, { method: 'POST', path: `/subjects/${scratch}/versions`, body: { schema: '"string"' } }, admin);
    if (!call.path.includes('/versions/')) return;
  }
  if (call.method === 'DELETE' && call.path.startsWith('/mode/')) await send(registry.url, { method: 'PUT', path: call.path, body: { mode: 'READWRITE' } }, admin);
  if (call.method === 'DELETE' && call.path.startsWith('/config')) await send(registry.url, { method: 'PUT', path: call.path, body: { compatibility: 'FULL' } }, admin);
}

const services: [string, () => string, () => RouteTable, Record<string, string>][] = [
  ['ingress', () => ingress.url, () => ingressRouteTable(['/v1/orders']), { 'GET /healthz': '', 'GET /readyz': '' }],
  ['registry', () => registry.url, () => REGISTRY_ROUTES, {}],
  ['console', () => console_.url, () => CONSOLE_ROUTES, {}],
];

describe.each(services)('%s: every registered route, from the route table', (service, url, table) => {
  it('registered exactly the routes of its table', () => {
    expect([...registeredRoutes.get(service)!].sort()).toEqual(Object.keys(table()).sort());
  });

  it('without credentials: 401 (only public routes answer)', async () => {
    for (const key of registeredRoutes.get(service)!) {
      const rule = ruleFor(table(), ...(key.split(' ') as [string, string]))!;
      const call = sample(key);
      const answer = await send(url(), call);
      if (rule.needs({ params: {}, query: {} }).every((n) => n.kind === 'public')) {
        expect(answer.status, `${key} ${answer.body}`).not.toBe(401);
        continue;
      }
      expect(answer.status, `${key} ${answer.body}`).toBe(401);
      if (service === 'registry') expect(JSON.parse(answer.body), key).toMatchObject({ error_code: 40101, message: expect.any(String) });
      else if (answer.body !== '') expect(JSON.parse(answer.body), key).toMatchObject({ error: 'SLUICE_UNAUTHENTICATED' });
    }
  });

  it('with the wrong permission: 403; with the right one: 2xx', async () => {
    const keys = [...registeredRoutes.get(service)!].sort((a, b) => ['GET', 'POST', 'PUT', 'DELETE'].indexOf(a.split(' ')[0]!) - ['GET', 'POST', 'PUT', 'DELETE'].indexOf(b.split(' ')[0]!));
    for (const key of keys) {
      const call = sample(key);
      const needs = ruleFor(table(), ...(key.split(' ') as [string, string]))!.needs({ params: {}, query: { topic } });
      const lost = { name: 'lost', grants: [parseGrant('read:no-such-topic')] };
      if (!authorize(lost, needs).allowed) {
        const denied = await send(url(), call, basic('lost', PASSWORDS.lost));
        expect(denied.status, `${key} ${denied.body}`).toBe(403);
        if (service === 'registry') expect(JSON.parse(denied.body), key).toMatchObject({ error_code: 40301 });
      }
      await prepare(call);
      // The console signs its principals in with a session (the login carries its credentials in the body); its APIs also take basic auth.
      const allowed = await send(url(), call, key === 'POST /api/login' ? {} : basic('admin', PASSWORDS.admin));
      expect(allowed.status, `${key} ${allowed.body}`).toBeGreaterThanOrEqual(200);
      expect(allowed.status, `${key} ${allowed.body}`).toBeLessThan(300);
    }
  });
});

describe('the ingress', () => {
  it('a produce-only key posts events (the principal travels in a header) and cannot register schemas', async () => {
    const order = randomOrder();
    const posted = await send(ingress.url, { method: 'POST', path: '/v1/orders', body: order }, bearer(access.keys.producer!));
    expect(posted.status, posted.body).toBe(200);
    const refused = await send(registry.url, { method: 'POST', path: `/subjects/${subject}/versions`, body: { schema: '"string"' } }, bearer(access.keys.producer!));
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toEqual({ error_code: 40301, message: expect.stringMatching(/producer.*registry:write/) });

    const principals = new Map<string, string>();
    await expect
      .poll(
        async () => {
          for (const r of await readTopics([topic])) principals.set(String(r.key), r.headers.find(([name]) => name === PRINCIPAL_HEADER)?.[1].toString() ?? '');
          return principals.get(order.orderId);
        },
        { timeout: 20_000 },
      )
      .toBe('producer');
  });

  it('serves HTTPS only, with security headers', async () => {
    expect(ingress.url).toMatch(/^https:/);
    await expect(fetch(ingress.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    const health = await fetch(`${ingress.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('strict-transport-security')).toMatch(/max-age/);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('the registry', () => {
  it('@kafkajs/confluent-schema-registry registers with basic-auth credentials; without them it gets 401', async () => {
    const schema = JSON.stringify({ type: 'record', name: 'Audited', namespace: 'test', fields: [{ name: 'id', type: 'string' }] });
    const client = new SchemaRegistry({ host: registry.url, auth: { username: 'writer', password: PASSWORDS.writer } });
    const { id } = await client.register({ type: SchemaType.AVRO, schema }, { subject: `${topic}-audited` });
    expect(id).toBeGreaterThan(0);
    expect(await client.getLatestSchemaId(`${topic}-audited`)).toBe(id);
    await expect(new SchemaRegistry({ host: registry.url }).getLatestSchemaId(`${topic}-audited`)).rejects.toThrow(/401|Unauthorized/);
    // Outside its subjects the writer may not write.
    await expect(client.register({ type: SchemaType.AVRO, schema }, { subject: 'payments-value' })).rejects.toThrow(/403|Forbidden/);

    const audit = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.audit === 'registry' && l.subject === `${topic}-audited` && l.status === 200);
    expect(audit).toMatchObject({ principal: 'writer', method: 'POST', id, version: 1, compatibility: 'BACKWARD' });
    // Global config is an admin's.
    const global = await send(registry.url, { method: 'PUT', path: '/config', body: { compatibility: 'NONE' } }, basic('writer', PASSWORDS.writer));
    expect(global.status).toBe(403);
  });

  it('lists only the subjects a principal may read', async () => {
    const answer = await send(registry.url, { method: 'GET', path: '/subjects' }, basic('writer', PASSWORDS.writer));
    const subjects = JSON.parse(answer.body) as string[];
    expect(subjects.length).toBeGreaterThan(0);
    expect(subjects.every((s) => s.startsWith(topic))).toBe(true);
  });
});

const CHROMIUM = '/usr/bin/chromium';
describe.skipIf(!existsSync(CHROMIUM))('the console in headless chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'] });
  });
  afterAll(async () => browser?.close());

  it('asks for a login, refuses a wrong password, signs in with an HttpOnly SameSite=Strict cookie, signs out', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${console_.url}/#/topics`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Name').fill('viewer');
    await page.getByLabel('Password or API key').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('wrong name or password').waitFor();

    await page.getByLabel('Password or API key').fill(PASSWORDS.viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: topic, exact: true }).waitFor();
    expect(await page.getByTestId('principal').textContent()).toBe('viewer');
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'sluice_session', httpOnly: true, sameSite: 'Strict', secure: true });

    // A write without the page's CSRF token (what another site could forge) is refused.
    const forged = await page.evaluate(async () => (await fetch('/api/logout', { method: 'POST' })).status);
    expect(forged).toBe(401);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(async () => (await fetch('/api/topics')).status)).toBe(401);
    await context.close();
  });

  it('a principal without console:viewer cannot sign in', async () => {
    const answer = await send(console_.url, { method: 'POST', path: '/api/login', body: { name: 'writer', password: PASSWORDS.writer } });
    expect(answer.status).toBe(403);
    expect(answer.headers.get('set-cookie')).toBeNull();
  });
});

describe('logs', () => {
  it('never hold a key, a password or an Authorization header', () => {
    const text = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(10);
    for (const secret of [...Object.values(access.keys), ...Object.values(PASSWORDS)]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    }
    // No header was logged (the word itself appears in messages that say which headers to send).
    expect(text).not.toMatch(/"authorization"\s*:/i);
  });
});
