import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { basic, writeAccessFile } from '../support/access.ts';
import { memoryRegistryApp } from '../support/memory-registry.ts';

/**
 * Schema ids are scoped to subjects, as with Confluent's RBAC: a principal reads an id only through a subject
 * it may read, lists of an id's subjects show only those, and a submitted schema's references resolve only
 * readable subjects. What it may not see answers exactly as what does not exist.
 */
const PASSWORD = 'reader-password-1';
const admin = basic('admin', 'admin-password-1');
const reader = basic('reader', PASSWORD);
const SHARED = JSON.stringify({ type: 'record', name: 'Shared', namespace: 'test', fields: [{ name: 'id', type: 'string' }] });
const HIDDEN = JSON.stringify({ type: 'record', name: 'Hidden', namespace: 'test', fields: [{ name: 'secret', type: 'string' }] });
const USES_HIDDEN = JSON.stringify({ type: 'record', name: 'Uses', namespace: 'test', fields: [{ name: 'h', type: 'test.Hidden' }] });

let app: FastifyInstance;
let sharedId: number;
let hiddenId: number;

const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown) => {
  const response = await app.inject({ method, url, headers: { ...headers, 'content-type': 'application/json' }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  return { status: response.statusCode, body: response.json() as unknown };
};

beforeAll(async () => {
  const access = await writeAccessFile([
    { name: 'admin', allow: ['*'], password: 'admin-password-1' },
    { name: 'reader', allow: ['registry:read:orders.scored-value'], password: PASSWORD },
  ]);
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent', SLUICE_ACCESS_FILE: access.file });
  app = memoryRegistryApp(config, createLogger(config, 'registry-scope')).app;
  await app.ready();
  sharedId = ((await call('POST', '/subjects/orders.placed-value/versions', admin, { schema: SHARED })).body as { id: number }).id;
  await call('POST', '/subjects/orders.scored-value/versions', admin, { schema: SHARED });
  hiddenId = ((await call('POST', '/subjects/orders.hidden-value/versions', admin, { schema: HIDDEN })).body as { id: number }).id;
});
afterAll(async () => app?.close());

describe('ids through readable subjects only', () => {
  it('an id used only by subjects the caller may not read answers 40403 on every id route, as a missing id does', async () => {
    for (const suffix of ['', '/schema', '/versions', '/subjects']) {
      const hidden = await call('GET', `/schemas/ids/${hiddenId}${suffix}`, reader);
      const missing = await call('GET', `/schemas/ids/99999${suffix}`, reader);
      expect(hidden, suffix).toEqual({ status: 404, body: { error_code: 40403, message: `Schema ${hiddenId} not found` } });
      expect(missing, suffix).toEqual({ status: 404, body: { error_code: 40403, message: 'Schema 99999 not found' } });
    }
    expect((await call('GET', `/schemas/ids/${hiddenId}`, admin)).status).toBe(200);
  });

  it('an id shared with a readable subject is read, and its lists hold only the readable subjects', async () => {
    expect(await call('GET', `/schemas/ids/${sharedId}`, reader)).toEqual({ status: 200, body: { schema: SHARED } });
    expect(await call('GET', `/schemas/ids/${sharedId}/versions`, reader)).toEqual({ status: 200, body: [{ subject: 'orders.scored-value', version: 1 }] });
    expect(await call('GET', `/schemas/ids/${sharedId}/subjects`, reader)).toEqual({ status: 200, body: ['orders.scored-value'] });
    expect((await call('GET', `/schemas/ids/${sharedId}/subjects`, admin)).body).toEqual(['orders.placed-value', 'orders.scored-value']);
  });
});

describe('references of a submitted schema', () => {
  it('to a subject the caller may not read answer 42201 as if it did not exist, naming the reference', async () => {
    const test = (subject: string) => call('POST', '/compatibility/subjects/orders.scored-value/versions', reader, { schema: USES_HIDDEN, references: [{ name: 'test.Hidden', subject, version: 1 }] });
    const hidden = await test('orders.hidden-value');
    const missing = await test('orders.nothing-value');
    expect(hidden).toEqual({ status: 422, body: { error_code: 42201, message: expect.stringContaining("subject 'orders.hidden-value' has no version 1") } });
    expect((hidden.body as { message: string }).message.replaceAll('hidden', 'nothing')).toBe((missing.body as { message: string }).message);
    // The same request from a caller who may read it resolves the reference.
    const asAdmin = await call('POST', '/compatibility/subjects/orders.scored-value/versions', admin, {
      schema: USES_HIDDEN,
      references: [{ name: 'test.Hidden', subject: 'orders.hidden-value', version: 1 }],
    });
    expect(asAdmin.status).toBe(200);
  });
});
