import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { chromium, type Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustConfiguredCa } from '../../access/trust.ts';
import { authorize, parseGrant } from '../../access/permissions.ts';
import { registeredRoutes } from '../../access/plugin.ts';
import { CONSOLE_ROUTES, ingressRouteTable, REGISTRY_ROUTES, ruleFor, type RouteTable } from '../../access/route-table.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startConsole, type RunningConsole } from '../../console/server.ts';
import { CSRF_HEADER } from '../../access/console-session.ts';
import { DLQ_HEADERS, REPLAY_HEADER } from '../../consumers/headers.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { PRINCIPAL_HEADER } from '../../producers/routes.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { basic, bearer, writeAccessFile, type TestAccess } from '../support/access.ts';
import { orderTopology } from '../support/order-topology.ts';
import { randomOrder } from '../support/orders.ts';
import { createTestTopics, createTopics, readTopics, seam, testConfig, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * The three HTTP services as an operator deploys them: an access file, TLS with
 * a test CA, the real broker. Every registered route is walked from the route
 * table; Confluent's client registers with basic auth; the console is signed
 * into in chromium; and nothing logged holds a key or a password.
 */

const topic = uniqueName('orders.placed-access');
const subject = `${topic}-value`;
// The route walk's dead-letter topic (empty: replaying it replays nothing); the replay test's original topic and its dead letters.
const walkDlq = `${topic}.walk.dlq`;
const replayTarget = uniqueName('orders.replay-access');
const replayDlq = `${replayTarget}.dlq`;
// A second dead-letter topic of the same worker input, for a letter whose header names another topic.
const forgedDlq = `${replayTarget}.forged.dlq`;
const dir = mkdtempSync(join(tmpdir(), 'sluice-access-it-'));
const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

const PASSWORDS = { admin: 'admin-password-1', viewer: 'viewer-password-1', operator: 'operator-password-1', writer: 'writer-password-1', lost: 'lost-password-1', narrow: 'narrow-password-1' };
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
      // A replay writes to the worker's input: the operator may produce to the route that writes there.
      { name: 'operator', allow: ['console:operator', 'read:*', 'produce:/v1/replay-orders'], password: PASSWORDS.operator },
      { name: 'operator-no-write', allow: ['console:operator', 'read:*'] },
      // Signed in, allowed nothing: the "wrong permission" of every route.
      { name: 'lost', allow: ['read:no-such-topic'], password: PASSWORDS.lost },
      // A console viewer allowed the schemas of one subject.
      { name: 'subject-viewer', allow: ['console:viewer', `registry:read:${topic}-value`] },
      // Reads one other subject only: ids and references must not show it the order subject.
      { name: 'narrow', allow: [`registry:read:${topic}.scored-value`], password: PASSWORDS.narrow },
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
  await createTestTopics([walkDlq, replayTarget, replayDlq, forgedDlq].map((name) => ({ name, partitions: 1 })));
  registry = await startRegistry({ config: base, logger, port: 0 });
  const registryUrl = withRegistryCredentials(registry.url, 'admin', PASSWORDS.admin);
  const config = testConfig({ accessFile: access.file, tlsCert: tls.cert, tlsKey: tls.key, tlsCa: tls.ca, registryUrl, registryTopic: base.registryTopic, logLevel: 'info' });
  ingress = await startIngress({ config, logger, topology: orderTopology(topic, 1), registry: new RegistryClient(registryUrl), port: 0 });
  // The records of replayTarget dead-letter into replayDlq and forgedDlq, by this topology: a replay goes back there only.
  const worker = { name: 'replay-worker', input: replayTarget, output: replayTarget, groupId: 'replay-worker', handler: '', delivery: 'at-least-once' } as const;
  console_ = await startConsole({
    config,
    logger,
    port: 0,
    topology: {
      workers: [
        { ...worker, deadLetter: replayDlq },
        { ...worker, name: 'forged-worker', deadLetter: forgedDlq },
      ],
      bridges: [],
      routes: [{ method: 'POST', path: '/v1/replay-orders', topic: replayTarget, key: 'orderId' }],
    },
  });
  schemaId = (await new RegistryClient(registryUrl).latest(subject)).id;
});

afterAll(async () => {
  await console_?.close();
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([walkDlq, `${walkDlq}.replayed`, replayTarget, replayDlq, `${replayDlq}.replayed`, forgedDlq, `${forgedDlq}.replayed`])).catch(() => undefined);
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
    .replace(':topic', url.startsWith('/api/dlq') ? walkDlq : topic);
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
          for (const r of await readTopics([topic])) principals.set(String(r.key), r.headers.find(([name]) => name === PRINCIPAL_HEADER)?.[1]?.toString() ?? '');
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

  it('refuses a repeated query parameter with 400 in its own error shape', async () => {
    const answer = await send(registry.url, { method: 'GET', path: `/subjects/${subject}/versions?deleted=true&deleted=false` }, basic('admin', PASSWORDS.admin));
    expect(answer.status, answer.body).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error_code: 400, message: expect.stringContaining('"deleted"') });
  });

  it('lists only the subjects a principal may read', async () => {
    const answer = await send(registry.url, { method: 'GET', path: '/subjects' }, basic('writer', PASSWORDS.writer));
    const subjects = JSON.parse(answer.body) as string[];
    expect(subjects.length).toBeGreaterThan(0);
    expect(subjects.every((s) => s.startsWith(topic))).toBe(true);
  });
});

describe('the console', () => {
  it('lists only the subjects the viewer may read (registry:read), though it asks the registry with its own credentials', async () => {
    const admin = await send(registry.url, { method: 'POST', path: `/subjects/${topic}-other-value/versions`, body: { schema: '"string"' } }, basic('admin', PASSWORDS.admin));
    expect(admin.status, admin.body).toBe(200);
    const listed = async (headers: Record<string, string>) => {
      const answer = await send(console_.url, { method: 'GET', path: '/api/schemas' }, headers);
      expect(answer.status, answer.body).toBe(200);
      return (JSON.parse(answer.body) as { subject: string }[]).map((s) => s.subject);
    };
    expect(await listed(bearer(access.keys['subject-viewer']!))).toEqual([subject]);
    // console:viewer without any registry:read: no subject at all.
    expect(await listed(basic('viewer', PASSWORDS.viewer))).toEqual([]);
    expect(await listed(basic('admin', PASSWORDS.admin))).toEqual(expect.arrayContaining([subject, `${topic}-other-value`]));
  });
});

describe('the registry, to a narrow reader (issue 22)', () => {
  it("reads an id only through a subject it may read, and cannot resolve another subject's schema as a reference", async () => {
    const narrow = basic('narrow', PASSWORDS.narrow);
    for (const suffix of ['', '/schema', '/versions', '/subjects']) {
      const answer = await send(registry.url, { method: 'GET', path: `/schemas/ids/${schemaId}${suffix}` }, narrow);
      expect(answer.status, suffix).toBe(404);
      expect(JSON.parse(answer.body), suffix).toEqual({ error_code: 40403, message: `Schema ${schemaId} not found` });
    }
    expect((await send(registry.url, { method: 'GET', path: `/subjects/${subject}/versions` }, narrow)).status).toBe(403);
    const uses = JSON.stringify({ type: 'record', name: 'Uses', fields: [{ name: 'o', type: 'string' }] });
    const probe = await send(
      registry.url,
      { method: 'POST', path: `/compatibility/subjects/${topic}.scored-value/versions`, body: { schema: uses, references: [{ name: 'x.Order', subject, version: 1 }] } },
      narrow,
    );
    expect(probe.status).toBe(422);
    expect(JSON.parse(probe.body)).toMatchObject({ error_code: 42201, message: expect.stringContaining(`subject '${subject}' has no version 1`) });
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
    expect(forged).toBe(403);

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

/** Signs in as the console's page does: the session cookie and the session's CSRF token. */
async function signIn(name: keyof typeof PASSWORDS): Promise<{ cookie: string; csrf: string; operator: boolean }> {
  const answer = await send(console_.url, { method: 'POST', path: '/api/login', body: { name, password: PASSWORDS[name] } });
  expect(answer.status, answer.body).toBe(200);
  const { csrf, operator } = JSON.parse(answer.body) as { csrf: string; operator: boolean };
  return { cookie: answer.headers.get('set-cookie')!.split(';')[0]!, csrf, operator };
}

describe('the console: dead-letter replay is an operator action', () => {
  const replayPath = `/api/dlq/${replayDlq}/replay`;
  const replay = (body: unknown, headers: Record<string, string>) => send(console_.url, { method: 'POST', path: replayPath, body }, headers);
  /** The replayed copies on the original topic, as a read_committed reader sees them. */
  const copies = async (): Promise<string[]> => (await readTopics([replayTarget], { readCommitted: true })).filter((r) => r.headers.some(([name]) => name === REPLAY_HEADER)).map((r) => String(r.key));

  beforeAll(async () => {
    const producer = seam('access-dlq-test').producer();
    const letter = (key: string, errorClass: string) => ({
      topic: replayDlq,
      key: Buffer.from(key),
      value: Buffer.from(`bytes of ${key}`),
      headers: Object.entries({
        [DLQ_HEADERS.errorClass]: errorClass,
        [DLQ_HEADERS.errorCode]: 'SLUICE_VALIDATION',
        [DLQ_HEADERS.errorMessage]: `${errorClass} while handling ${key}`,
        [DLQ_HEADERS.originalTopic]: replayTarget,
        [DLQ_HEADERS.originalPartition]: '0',
        [DLQ_HEADERS.originalOffset]: '7',
        [DLQ_HEADERS.failedAt]: new Date().toISOString(),
      }).map(([name, value]) => [name, Buffer.from(value)] as const),
    });
    try {
      await producer.send([letter('letter-a', 'TypeError'), letter('letter-b', 'ValidationError')]);
    } finally {
      await producer.close();
    }
  });

  it('a viewer lists the dead letters with their error and origin, and is refused the replay (403)', async () => {
    const viewer = await signIn('viewer');
    expect(viewer.operator).toBe(false);
    const listed = await send(console_.url, { method: 'GET', path: `/api/dlq/${replayDlq}` }, { cookie: viewer.cookie });
    expect(listed.status, listed.body).toBe(200);
    const { letters } = JSON.parse(listed.body) as { letters: Record<string, unknown>[] };
    expect(letters).toEqual([
      expect.objectContaining({
        partition: 0,
        offset: '0',
        key: 'letter-a',
        errorClass: 'TypeError',
        errorCode: 'SLUICE_VALIDATION',
        original: { topic: replayTarget, partition: 0, offset: '7' },
        replayed: null,
      }),
      expect.objectContaining({ partition: 0, offset: '1', key: 'letter-b', errorClass: 'ValidationError', errorMessage: 'ValidationError while handling letter-b' }),
    ]);

    const refused = await replay({}, { cookie: viewer.cookie, [CSRF_HEADER]: viewer.csrf });
    expect(refused.status, refused.body).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'SLUICE_FORBIDDEN', message: expect.stringContaining('console:operator') });
    // Topics the page offers a dead-letter view of.
    const topics = JSON.parse((await send(console_.url, { method: 'GET', path: '/api/topics' }, { cookie: viewer.cookie })).body) as { name: string; deadLetters: boolean }[];
    expect(topics.find((t) => t.name === replayDlq)?.deadLetters).toBe(true);
    expect(topics.find((t) => t.name === replayTarget)?.deadLetters).toBe(false);
  });

  it("an operator's replay without the session's CSRF token, or with another, is refused (403); bad input is 400 or 404", async () => {
    const operator = await signIn('operator');
    expect(operator.operator).toBe(true);
    const missing = await replay({}, { cookie: operator.cookie });
    expect(missing.status, missing.body).toBe(403);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'SLUICE_FORBIDDEN', message: expect.stringContaining(CSRF_HEADER) });
    const wrong = await replay({}, { cookie: operator.cookie, [CSRF_HEADER]: (await signIn('operator')).csrf });
    expect(wrong.status, wrong.body).toBe(403);

    const withToken = { cookie: operator.cookie, [CSRF_HEADER]: operator.csrf };
    const bad = await replay({ offsets: ['0:0', 'zero'] }, withToken);
    expect(bad.status, bad.body).toBe(400);
    expect(JSON.parse(bad.body).message).toContain('offsets[1]');
    const unknownField = await replay({ offset: ['0:0'] }, withToken);
    expect(unknownField.status, unknownField.body).toBe(400);
    expect(JSON.parse(unknownField.body).message).toContain('"offset"');
    const unknownTopic = await send(console_.url, { method: 'POST', path: `/api/dlq/${replayTarget}.nope.dlq/replay`, body: {} }, withToken);
    expect(unknownTopic.status, unknownTopic.body).toBe(404);
    // Not a dead-letter topic (by name or by the topology): neither listed nor replayed.
    for (const call of [
      { method: 'GET', path: `/api/dlq/${replayTarget}` },
      { method: 'POST', path: `/api/dlq/${replayTarget}/replay`, body: {} },
    ]) {
      const notDlq = await send(console_.url, call, withToken);
      expect(notDlq.status, notDlq.body).toBe(400);
      expect(JSON.parse(notDlq.body).message).toContain('not a dead-letter topic');
    }
    expect(await copies()).toEqual([]);
  });

  it('lists the dead letters a page at a time: `next` leads through every letter once; bad paging is 400', async () => {
    const operator = await signIn('operator');
    const page = async (query: string) => {
      const answer = await send(console_.url, { method: 'GET', path: `/api/dlq/${replayDlq}${query}` }, { cookie: operator.cookie });
      expect(answer.status, answer.body).toBe(200);
      return JSON.parse(answer.body) as { letters: { partition: number; offset: string; key: string }[]; next: string | null };
    };
    const all = await page('');
    expect(all.next).toBeNull();
    const paged: string[] = [];
    let next: string | null = '';
    let pages = 0;
    while (next !== null) {
      const current = await page(`?limit=1${next ? `&from=${next}` : ''}`);
      expect(current.letters.length).toBeLessThanOrEqual(1);
      paged.push(...current.letters.map((l) => `${l.partition}:${l.offset}`));
      next = current.next;
      pages += 1;
    }
    expect(paged).toEqual(all.letters.map((l) => `${l.partition}:${l.offset}`));
    expect(pages).toBeGreaterThanOrEqual(all.letters.length);
    for (const bad of ['?limit=0', '?limit=201', '?from=zero', '?offset=3', '?limit=1&limit=2']) {
      const answer = await send(console_.url, { method: 'GET', path: `/api/dlq/${replayDlq}${bad}` }, { cookie: operator.cookie });
      expect(answer.status, `${bad}: ${answer.body}`).toBe(400);
    }
  });

  it("a letter whose header names a topic its letters do not come from is not replayed there (409), whatever the operator's session", async () => {
    const producer = seam('access-dlq-forged').producer();
    try {
      await producer.send([
        {
          topic: forgedDlq,
          key: Buffer.from('forged'),
          value: Buffer.from('forged bytes'),
          headers: [
            [DLQ_HEADERS.errorClass, Buffer.from('TypeError')],
            [DLQ_HEADERS.originalTopic, Buffer.from(topic)],
          ],
        },
      ]);
    } finally {
      await producer.close();
    }
    const operator = await signIn('operator');
    const answer = await send(console_.url, { method: 'POST', path: `/api/dlq/${forgedDlq}/replay`, body: {} }, { cookie: operator.cookie, [CSRF_HEADER]: operator.csrf });
    expect(answer.status, answer.body).toBe(409);
    expect(JSON.parse(answer.body).message).toContain(`names "${topic}" as its topic, which is not one whose records dead-letter into ${forgedDlq}`);
    // An operator who may not write to the worker's input (no produce on a route to it) is refused before anything is read.
    const noWrite = await send(console_.url, { method: 'POST', path: `/api/dlq/${replayDlq}/replay`, body: {} }, bearer(access.keys['operator-no-write']!));
    expect(noWrite.status, noWrite.body).toBe(403);
    expect(JSON.parse(noWrite.body).message).toContain(`writes to ${replayTarget}: principal "operator-no-write" lacks produce:/v1/replay-orders`);
    expect((await readTopics([topic], { readCommitted: true })).filter((r) => String(r.key) === 'forged')).toEqual([]);
  });

  it('an operator with the CSRF token replays each letter back to its topic once; a second replay replays 0', async () => {
    const operator = await signIn('operator');
    const withToken = { cookie: operator.cookie, [CSRF_HEADER]: operator.csrf };
    const first = await replay({ offsets: ['0:0'] }, withToken);
    expect(first.status, first.body).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ replayed: 1, alreadyReplayed: 0, notFound: [] });
    await expect.poll(copies, { timeout: 15_000 }).toEqual(['letter-a']);

    // The rest (no body: every letter not yet replayed), then everything again: the ledger has them all.
    const rest = await send(console_.url, { method: 'POST', path: replayPath }, withToken);
    expect(rest.status, rest.body).toBe(200);
    expect(JSON.parse(rest.body)).toEqual({ replayed: 1, alreadyReplayed: 1, notFound: [] });
    const again = await replay({}, withToken);
    expect(again.status, again.body).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ replayed: 0, alreadyReplayed: 2, notFound: [] });
    const named = await replay({ offsets: ['0:0', '0:99'] }, withToken);
    expect(JSON.parse(named.body)).toEqual({ replayed: 0, alreadyReplayed: 1, notFound: ['0:99'] });

    await expect.poll(async () => (await copies()).sort(), { timeout: 15_000 }).toEqual(['letter-a', 'letter-b']);
    const listed = JSON.parse((await send(console_.url, { method: 'GET', path: `/api/dlq/${replayDlq}` }, { cookie: operator.cookie })).body) as { letters: { replayed: unknown }[] };
    expect(listed.letters.map((l) => l.replayed)).toEqual([
      { to: replayTarget, at: expect.any(String) },
      { to: replayTarget, at: expect.any(String) },
    ]);
    const audit = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === 'console' && l.principal === 'operator' && l.status === 200);
    expect(audit.length).toBe(4);
  });

  it.skipIf(!existsSync(CHROMIUM))('in chromium: a viewer sees the dead letters without a Replay button; an operator clicks Replay', async () => {
    const producer = seam('access-dlq-test').producer();
    try {
      await producer.send([
        {
          topic: replayDlq,
          key: Buffer.from('letter-c'),
          value: Buffer.from('bytes of letter-c'),
          headers: [
            [DLQ_HEADERS.errorClass, Buffer.from('RangeError')],
            [DLQ_HEADERS.originalTopic, Buffer.from(replayTarget)],
            [DLQ_HEADERS.originalPartition, Buffer.from('0')],
          ],
        },
      ]);
    } finally {
      await producer.close();
    }
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'] });
    try {
      const signInAs = async (name: 'viewer' | 'operator') => {
        const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
        await page.goto(`${console_.url}/#/topics`);
        await page.getByLabel('Name').fill(name);
        await page.getByLabel('Password or API key').fill(PASSWORDS[name]);
        await page.getByRole('button', { name: 'Sign in' }).click();
        // The topic list links a dead-letter topic's letters.
        await page.getByRole('link', { name: replayDlq, exact: true }).waitFor();
        await page
          .locator('tr', { has: page.getByRole('link', { name: replayDlq, exact: true }) })
          .getByRole('link', { name: 'dead letters' })
          .click();
        await page.getByTestId('dlq-count').waitFor();
        return page;
      };
      const viewer = await signInAs('viewer');
      expect(await viewer.getByTestId('dlq-count').textContent()).toBe('3 dead letters · 1 not replayed');
      expect(await viewer.getByText('RangeError').count()).toBe(1);
      expect(await viewer.getByRole('button', { name: /Replay/ }).count()).toBe(0);

      const operator = await signInAs('operator');
      const row = operator.locator('tr', { hasText: 'letter-c' });
      expect(await operator.getByRole('button', { name: 'Replay', exact: true }).count()).toBe(1);
      await row.getByRole('button', { name: 'Replay' }).click();
      await expect.poll(() => operator.getByTestId('replay-status').textContent(), { timeout: 15_000 }).toBe('replayed 1, 0 already replayed');
      expect(await operator.getByTestId('dlq-count').textContent()).toBe('3 dead letters · 0 not replayed');
      expect(await operator.getByRole('button', { name: /Replay/ }).count()).toBe(0);
      await expect.poll(async () => (await copies()).sort(), { timeout: 15_000 }).toEqual(['letter-a', 'letter-b', 'letter-c']);
    } finally {
      await browser.close();
    }
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
