import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRegistryApp } from '../../registry/routes.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { RegistryStore } from '../../registry/store.ts';
import { call, deleteRegistryTopic, recordSchema, registryTestConfig, V1 } from './registry-helpers.ts';

const { config, logger, topic } = registryTestConfig();
let registry: RunningRegistry;
const api = (method: string, path: string, body?: unknown, contentType?: string) => call(registry.url, method, path, body, contentType);

const v1 = recordSchema('User', [{ name: 'id', type: 'long' }]);
const v2 = recordSchema('User', [
  { name: 'id', type: 'long' },
  { name: 'email', type: ['null', 'string'], default: null },
]);
const requiredName = recordSchema('User', [
  { name: 'id', type: 'long' },
  { name: 'name', type: 'string' },
]);

beforeAll(async () => {
  registry = await startRegistry({ config, logger, port: 0, topic });
});

afterAll(async () => {
  await registry?.close();
  await deleteRegistryTopic(config, logger, topic);
});

describe('registering and reading schemas', () => {
  it('registers, returns ids from 1, and answers in the v1 content type', async () => {
    const first = await api('POST', '/subjects/users-value/versions', { schema: v1 });
    expect(first).toMatchObject({ status: 200, body: { id: 1 } });
    expect(first.contentType).toMatch(/^application\/vnd\.schemaregistry\.v1\+json/);
    expect(await api('POST', '/subjects/users-value/versions', { schema: v2 })).toMatchObject({ status: 200, body: { id: 2 } });
  });

  it.each([V1, 'application/vnd.schemaregistry+json', 'application/json'])('accepts requests in %s', async (contentType) => {
    // Same schema with other whitespace and key order: same id, no new version.
    const reordered = JSON.stringify({ fields: [{ type: 'long', name: 'id' }], namespace: 'test', name: 'User', type: 'record' }, null, 2);
    expect(await api('POST', '/subjects/users-value/versions', { schema: reordered }, contentType)).toMatchObject({ status: 200, body: { id: 1 } });
  });

  it('does not create a version when re-registering', async () => {
    expect((await api('GET', '/subjects/users-value/versions')).body).toEqual([1, 2]);
  });

  it('gives the same schema under another subject the same global id', async () => {
    expect((await api('POST', '/subjects/other-value/versions', { schema: v1 })).body).toEqual({ id: 1 });
    expect((await api('GET', '/schemas/ids/1/versions')).body).toEqual([
      { subject: 'other-value', version: 1 },
      { subject: 'users-value', version: 1 },
    ]);
    expect((await api('GET', '/schemas/ids/1/subjects')).body).toEqual(['other-value', 'users-value']);
  });

  it('serves subjects, versions and schemas', async () => {
    expect((await api('GET', '/subjects')).body).toEqual(['other-value', 'users-value']);
    expect((await api('GET', '/subjects/users-value/versions/2')).body).toEqual({ subject: 'users-value', version: 2, id: 2, schema: v2 });
    for (const latest of ['latest', '-1']) {
      expect((await api('GET', `/subjects/users-value/versions/${latest}`)).body).toMatchObject({ version: 2, id: 2 });
    }
    const raw = await api('GET', '/subjects/users-value/versions/1/schema');
    expect(raw.text).toBe(v1);
    expect((await api('GET', '/schemas/ids/2')).body).toEqual({ schema: v2 });
    expect((await api('GET', '/schemas/ids/2/schema')).text).toBe(v2);
    expect((await api('GET', '/schemas/types')).body).toEqual(['JSON', 'PROTOBUF', 'AVRO']);
  });

  it('looks a schema up under a subject', async () => {
    expect(await api('POST', '/subjects/users-value', { schema: v2 })).toMatchObject({
      status: 200,
      body: { subject: 'users-value', id: 2, version: 2, schema: v2 },
    });
    expect(await api('POST', '/subjects/users-value', { schema: requiredName })).toMatchObject({ status: 404, body: { error_code: 40403 } });
    expect(await api('POST', '/subjects/nobody', { schema: v1 })).toMatchObject({ status: 404, body: { error_code: 40401 } });
  });
});

describe('compatibility', () => {
  it('refuses an incompatible schema with 409 and the reason', async () => {
    const answer = await api('POST', '/subjects/users-value/versions', { schema: requiredName });
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ error_code: 409, message: expect.stringMatching(/test\.User\.name: READER_FIELD_MISSING_DEFAULT_VALUE/) });
  });

  it('tests compatibility, verbosely on request', async () => {
    expect((await api('POST', '/compatibility/subjects/users-value/versions/latest', { schema: requiredName })).body).toEqual({
      is_compatible: false,
    });
    const verbose = await api('POST', '/compatibility/subjects/users-value/versions/1?verbose=true', { schema: requiredName });
    expect(verbose.body).toEqual({ is_compatible: false, messages: [expect.stringMatching(/version 1: test\.User\.name/)] });
    expect((await api('POST', '/compatibility/subjects/users-value/versions', { schema: v2 })).body).toEqual({ is_compatible: true });
    expect(await api('POST', '/compatibility/subjects/users-value/versions/9', { schema: v2 })).toMatchObject({ status: 404, body: { error_code: 40402 } });
  });

  it('follows the subject level over the global one', async () => {
    expect((await api('GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(await api('GET', '/config/users-value')).toMatchObject({ status: 404, body: { error_code: 40408 } });
    expect((await api('GET', '/config/users-value?defaultToGlobal=true')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect((await api('PUT', '/config/users-value', { compatibility: 'NONE' })).body).toEqual({ compatibility: 'NONE' });
    expect((await api('GET', '/config/users-value')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect((await api('POST', '/subjects/users-value/versions', { schema: requiredName })).body).toEqual({ id: 3 });
    expect((await api('DELETE', '/config/users-value')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect(await api('GET', '/config/users-value')).toMatchObject({ status: 404, body: { error_code: 40408 } });
  });

  it('sets and resets the global level', async () => {
    expect((await api('PUT', '/config', { compatibility: 'full_transitive' })).body).toEqual({ compatibility: 'FULL_TRANSITIVE' });
    expect((await api('GET', '/config')).body).toEqual({ compatibilityLevel: 'FULL_TRANSITIVE' });
    expect((await api('DELETE', '/config')).body).toEqual({ compatibilityLevel: 'FULL_TRANSITIVE' });
    expect((await api('GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(await api('PUT', '/config', { compatibility: 'SOMETIMES' })).toMatchObject({ status: 422, body: { error_code: 42203 } });
  });
});

describe('deleting', () => {
  const s = recordSchema('Del', [{ name: 'a', type: 'int' }]);
  const s2 = recordSchema('Del', [
    { name: 'a', type: 'int' },
    { name: 'b', type: 'int', default: 0 },
  ]);

  it('soft then permanently deletes a version', async () => {
    await api('POST', '/subjects/del-v/versions', { schema: s });
    await api('POST', '/subjects/del-v/versions', { schema: s2 });
    expect(await api('DELETE', '/subjects/del-v/versions/1?permanent=true')).toMatchObject({ status: 404, body: { error_code: 40407 } });
    expect((await api('DELETE', '/subjects/del-v/versions/1')).body).toBe(1);
    expect(await api('DELETE', '/subjects/del-v/versions/1')).toMatchObject({ status: 404, body: { error_code: 40406 } });
    expect((await api('GET', '/subjects/del-v/versions')).body).toEqual([2]);
    expect((await api('GET', '/subjects/del-v/versions?deleted=true')).body).toEqual([1, 2]);
    expect(await api('GET', '/subjects/del-v/versions/1')).toMatchObject({ status: 404, body: { error_code: 40402 } });
    expect((await api('GET', '/subjects/del-v/versions/1?deleted=true')).body).toMatchObject({ version: 1 });
    expect((await api('DELETE', '/subjects/del-v/versions/1?permanent=true')).body).toBe(1);
    expect((await api('GET', '/subjects/del-v/versions?deleted=true')).body).toEqual([2]);
  });

  it('soft then permanently deletes a subject', async () => {
    await api('POST', '/subjects/del-s/versions', { schema: s });
    expect(await api('DELETE', '/subjects/del-s?permanent=true')).toMatchObject({ status: 404, body: { error_code: 40405 } });
    expect((await api('DELETE', '/subjects/del-s')).body).toEqual([1]);
    expect(await api('DELETE', '/subjects/del-s')).toMatchObject({ status: 404, body: { error_code: 40404 } });
    expect((await api('GET', '/subjects')).body).not.toContain('del-s');
    expect((await api('GET', '/subjects?deleted=true')).body).toContain('del-s');
    expect(await api('GET', '/subjects/del-s/versions')).toMatchObject({ status: 404, body: { error_code: 40401 } });
    // Re-registering after a soft delete makes a new version; the id stays the schema's.
    const { body } = await api('POST', '/subjects/del-s/versions', { schema: s });
    expect((await api('GET', '/subjects/del-s/versions/latest')).body).toMatchObject({ version: 2, ...(body as object) });
    expect((await api('DELETE', '/subjects/del-s')).body).toEqual([2]);
    expect((await api('DELETE', '/subjects/del-s?permanent=true')).body).toEqual([1, 2]);
    expect((await api('GET', '/subjects?deleted=true')).body).not.toContain('del-s');
    expect(await api('DELETE', '/subjects/del-s')).toMatchObject({ status: 404, body: { error_code: 40401 } });
  });
});

describe('modes', () => {
  it('refuses writes in READONLY mode with 42205, and reads go on', async () => {
    expect((await api('GET', '/mode')).body).toEqual({ mode: 'READWRITE' });
    expect((await api('PUT', '/mode', { mode: 'READONLY' })).body).toEqual({ mode: 'READONLY' });
    const write = await api('POST', '/subjects/ro/versions', { schema: recordSchema('Ro', [{ name: 'a', type: 'int' }]) });
    expect(write).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect(await api('DELETE', '/subjects/users-value/versions/1')).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect((await api('GET', '/subjects/users-value/versions')).status).toBe(200);
    expect((await api('PUT', '/mode', { mode: 'READWRITE' })).body).toEqual({ mode: 'READWRITE' });
    // IMPORT over existing subjects could hand out colliding ids: refused without force, as Confluent does.
    expect(await api('PUT', '/mode', { mode: 'IMPORT' })).toMatchObject({ status: 422, body: { error_code: 42205 } });
    expect(await api('PUT', '/mode', { mode: 'WRITEONLY' })).toMatchObject({ status: 422, body: { error_code: 42204 } });
  });
});

describe('errors', () => {
  it.each([
    ['GET', '/subjects/nobody/versions', undefined, 404, 40401],
    ['GET', '/subjects/users-value/versions/99', undefined, 404, 40402],
    ['GET', '/subjects/users-value/versions/zero', undefined, 422, 42202],
    ['GET', '/subjects/users-value/versions/0', undefined, 422, 42202],
    ['GET', '/schemas/ids/999', undefined, 404, 40403],
    ['GET', '/schemas/ids/abc/schema', undefined, 404, 40403],
    ['POST', '/subjects/bad/versions', { schema: '{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}' }, 422, 42201],
    ['POST', '/subjects/bad/versions', { schema: '"int"', schemaType: 'PROTOBUF' }, 422, 42201],
    ['POST', '/subjects/bad/versions', { schema: '"int"', references: [{ name: 'r', subject: 's', version: 1 }] }, 422, 42201],
    ['POST', '/subjects/bad/versions', {}, 422, 42201],
    ['POST', '/subjects/bad/versions', '{"schema": ', 400, 400],
    ['PUT', '/config/users-value', { compatibility: 42 }, 422, 42203],
    ['GET', '/no/such/route', undefined, 404, 404],
  ] as const)('%s %s -> %i %i', async (method, path, body, status, errorCode) => {
    const answer = await api(method, path, body);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ error_code: errorCode, message: expect.any(String) });
  });

  it('says why a reference, a schema type or a schema is refused', async () => {
    const refs = await api('POST', '/subjects/bad/versions', { schema: '"int"', references: [{ name: 'r', subject: 's', version: 1 }] });
    expect((refs.body as { message: string }).message).toMatch(/subject 's' has no version 1/);
    const type = await api('POST', '/subjects/bad/versions', { schema: '"int"', schemaType: 'THRIFT' });
    expect((type.body as { message: string }).message).toMatch(/Unsupported schemaType "THRIFT": use one of AVRO, JSON, PROTOBUF/);
    const proto = await api('POST', '/subjects/bad/versions', { schema: 'syntax = "proto3";\nmessage {', schemaType: 'PROTOBUF' });
    expect((proto.body as { message: string }).message).toMatch(/Invalid PROTOBUF schema/);
  });

  it('answers 50001 when the write to Kafka fails', async () => {
    const store = new RegistryStore({ config, logger, topic });
    await store.start();
    const app = buildRegistryApp(store, logger, config);
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      await store.close();
      const address = app.server.address() as { port: number };
      const answer = await call(`http://127.0.0.1:${address.port}`, 'POST', '/subjects/broken/versions', {
        schema: recordSchema('Broken', [{ name: 'a', type: 'int' }]),
      });
      expect(answer).toMatchObject({ status: 500, body: { error_code: 50001, message: expect.stringMatching(/writing to _schemas_test_/) } });
    } finally {
      await app.close();
    }
  });
});
