import type { FastifyInstance } from 'fastify';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { memoryRegistryApp } from '../support/memory-registry.ts';

/** Data contracts through the registry's REST API: stored with the version, returned where Confluent returns them, validated, merged from config. */
let app: FastifyInstance;

const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) => {
  const response = await app.inject({ method, url, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
};

const SCHEMA = JSON.stringify({ type: 'object', properties: { amount: { type: 'number' }, ssn: { type: 'string' } } });
const POSITIVE = { name: 'positive', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0' };
const MASK = { name: 'mask', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" };

beforeAll(async () => {
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  app = memoryRegistryApp(config, createLogger(config, 'registry-contracts')).app;
  await app.ready();
});
afterAll(async () => app.close());

describe('metadata and ruleSet on a version', () => {
  it('are stored and returned by version, latest, id and look-up', async () => {
    const metadata = { properties: { owner: 'payments' }, tags: { '**.ssn': ['PII'] } };
    const registered = await call('POST', '/subjects/pay-value/versions', { schemaType: 'JSON', schema: SCHEMA, metadata, ruleSet: { domainRules: [POSITIVE] } });
    expect(registered.status).toBe(200);
    const id = registered.body.id as number;
    const expectedRuleSet = { domainRules: [{ ...POSITIVE, disabled: false }] };
    const latest = await call('GET', '/subjects/pay-value/versions/latest');
    expect(latest.body).toEqual({ subject: 'pay-value', version: 1, id, schemaType: 'JSON', metadata, ruleSet: expectedRuleSet, schema: SCHEMA });
    expect((await call('GET', `/schemas/ids/${id}`)).body).toMatchObject({ metadata, ruleSet: expectedRuleSet });
    expect((await call('POST', '/subjects/pay-value', { schemaType: 'JSON', schema: SCHEMA })).body).toMatchObject({ version: 1, id, ruleSet: expectedRuleSet });
  });

  it('the same schema with a new ruleSet is a new version and id; a bare re-registration keeps the rules', async () => {
    const first = (await call('GET', '/subjects/pay-value/versions/1')).body;
    const second = await call('POST', '/subjects/pay-value/versions', { schemaType: 'JSON', schema: SCHEMA, ruleSet: { domainRules: [POSITIVE, MASK] } });
    expect(second.body.id).not.toBe(first.id);
    expect((await call('GET', '/subjects/pay-value/versions')).body).toEqual([1, 2]);
    // Confluent's clients register the bare schema: it inherits version 2's contract and is that version.
    expect((await call('POST', '/subjects/pay-value/versions', { schemaType: 'JSON', schema: SCHEMA })).body).toEqual({ id: second.body.id });
    const latest = (await call('GET', '/subjects/pay-value/versions/latest')).body;
    expect(latest).toMatchObject({ version: 2, metadata: { properties: { owner: 'payments' } } });
    expect((latest.ruleSet as { domainRules: { name: string }[] }).domainRules.map((r) => r.name)).toEqual(['positive', 'mask']);
  });

  it('an invalid rule is 422 (42201) naming the rule and the field, nothing stored', async () => {
    const bad = await call('POST', '/subjects/pay-value/versions', { schemaType: 'JSON', schema: SCHEMA, ruleSet: { domainRules: [{ ...POSITIVE, expr: 'message.amount >' }] } });
    expect(bad.status).toBe(422);
    expect(bad.body.error_code).toBe(42201);
    expect(bad.body.message).toMatch(/^Invalid rule 'positive': ruleSet\.domainRules\[0\]\.expr: does not compile/);
    const duplicate = await call('POST', '/subjects/pay-value/versions', { schemaType: 'JSON', schema: SCHEMA, ruleSet: { domainRules: [POSITIVE, POSITIVE] } });
    expect(duplicate.body.message).toMatch(/duplicate name 'positive'/);
    expect((await call('GET', '/subjects/pay-value/versions')).body).toEqual([1, 2]);
  });

  it('a field Sluice would not keep is refused (422 naming it), at every level, nothing stored', async () => {
    const refusals: [unknown, RegExp][] = [
      [{ schemaType: 'JSON', schema: SCHEMA, ruleset: { domainRules: [POSITIVE] } }, /^Unknown field "ruleset" in the request body \(known: schema, /],
      [{ schemaType: 'JSON', schema: SCHEMA, guid: 'x', schemaTagsToAdd: [] }, /^Unknown fields "guid", "schemaTagsToAdd" in the request body/],
      [{ schemaType: 'JSON', schema: SCHEMA, subject: 'other-value' }, /^"subject" is "other-value" but the request is for subject "pay-value"/],
      [{ schemaType: 'JSON', schema: SCHEMA, references: [{ name: 'a', subject: 'b', version: 1, extra: 1 }] }, /^Unknown field "extra" in references\[0\]/],
      [{ schemaType: 'JSON', schema: SCHEMA, metadata: { propertise: { a: 'b' } } }, /^Invalid data contract: metadata\.propertise: unknown field/],
      [{ schemaType: 'JSON', schema: SCHEMA, ruleSet: { domainRule: [POSITIVE] } }, /^Invalid data contract: ruleSet\.domainRule: unknown field/],
      [{ schemaType: 'JSON', schema: SCHEMA, ruleSet: { domainRules: [{ ...POSITIVE, onfailure: 'ERROR' }] } }, /^Invalid rule 'positive': ruleSet\.domainRules\[0\]\.onfailure: unknown field/],
    ];
    for (const [body, message] of refusals) {
      for (const url of ['/subjects/pay-value/versions', '/subjects/pay-value', '/compatibility/subjects/pay-value/versions/latest']) {
        const answer = await call('POST', url, body);
        expect({ url, status: answer.status, message: answer.body.message }).toEqual({ url, status: 422, message: expect.stringMatching(message) });
      }
    }
    expect((await call('GET', '/subjects/pay-value/versions')).body).toEqual([1, 2]);
    // Confluent's clients echo a version they read: its own subject, id and version are taken.
    const read = (await call('GET', '/subjects/pay-value/versions/2')).body;
    expect((await call('POST', '/subjects/pay-value/versions', read)).body).toEqual({ id: read.id });
    expect((await call('POST', '/subjects/pay-value', read)).body).toMatchObject({ version: 2 });
  });

  it('config and mode refuse a field they would not keep', async () => {
    const config = await call('PUT', '/config/pay-value', { compatibility: 'FULL', normalize: true });
    expect(config).toMatchObject({ status: 422, body: { error_code: 422, message: expect.stringMatching(/^Unknown field "normalize"/) } });
    expect((await call('PUT', '/config/pay-value', { compatibilty: 'NONE' })).body.message).toMatch(/^Unknown field "compatibilty"/);
    expect((await call('GET', '/config/pay-value')).body).toMatchObject({ error_code: 40408 });
    expect((await call('PUT', '/mode/pay-value', { mode: 'READONLY', force: true })).body.message).toMatch(/^Unknown field "force"/);
    expect((await call('GET', '/mode/pay-value')).body).toMatchObject({ error_code: 40409 });
  });
});

describe('config: defaultRuleSet, overrideMetadata, compatibilityGroup', () => {
  it('merges default, then the request, then the override', async () => {
    expect((await call('PUT', '/config/merge-value', { defaultRuleSet: { domainRules: [POSITIVE] }, overrideMetadata: { properties: { owner: 'platform' } } })).status).toBe(200);
    expect((await call('GET', '/config/merge-value')).body).toMatchObject({ compatibilityLevel: 'BACKWARD', defaultRuleSet: { domainRules: [{ name: 'positive' }] } });
    await call('POST', '/subjects/merge-value/versions', { schemaType: 'JSON', schema: SCHEMA, metadata: { properties: { owner: 'me', team: 'x' } }, ruleSet: { domainRules: [MASK] } });
    const latest = (await call('GET', '/subjects/merge-value/versions/latest')).body;
    expect(latest.metadata).toEqual({ properties: { owner: 'platform', team: 'x' } });
    expect((latest.ruleSet as { domainRules: { name: string }[] }).domainRules.map((r) => r.name)).toEqual(['positive', 'mask']);
  });

  it('a new value of the group property starts a new compatibility line', async () => {
    await call('PUT', '/config/group-value', { compatibility: 'BACKWARD', compatibilityGroup: 'major_version' });
    const v1 = JSON.stringify({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false });
    const breaking = JSON.stringify({ type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: false });
    await call('POST', '/subjects/group-value/versions', { schemaType: 'JSON', schema: v1, metadata: { properties: { major_version: '1' } } });
    expect((await call('POST', '/subjects/group-value/versions', { schemaType: 'JSON', schema: breaking, metadata: { properties: { major_version: '1' } } })).status).toBe(409);
    expect((await call('POST', '/subjects/group-value/versions', { schemaType: 'JSON', schema: breaking, metadata: { properties: { major_version: '2' } } })).status).toBe(200);
  });
});

describe('GET /schemas, /contexts, /subjects/{subject}/metadata, ?normalize=true', () => {
  it('lists versions by subject prefix, latest only, paged', async () => {
    const all = (await call('GET', '/schemas?subjectPrefix=pay-')).body as unknown as { subject: string; version: number; ruleSet?: unknown }[];
    expect(all.map((s) => [s.subject, s.version])).toEqual([
      ['pay-value', 1],
      ['pay-value', 2],
    ]);
    expect(all[1]!.ruleSet).toBeDefined();
    const latest = (await call('GET', '/schemas?latestOnly=true')).body as unknown as { subject: string }[];
    expect(latest.map((s) => s.subject)).toEqual(['group-value', 'merge-value', 'pay-value']);
    expect(((await call('GET', '/schemas?offset=1&limit=2')).body as unknown as unknown[]).length).toBe(2);
    expect((await call('GET', '/contexts')).body).toEqual(['.']);
  });

  it('finds the latest version with the given metadata properties', async () => {
    expect((await call('GET', '/subjects/group-value/metadata?key=major_version&value=1')).body).toMatchObject({ version: 1 });
    expect((await call('GET', '/subjects/group-value/metadata?key=major_version&value=2')).body).toMatchObject({ version: 2 });
    expect((await call('GET', '/subjects/group-value/metadata?key=major_version&value=3')).status).toBe(404);
  });

  it('normalize=true keeps the normalized text, and finds a reordered schema', async () => {
    const messy = '{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer"}}}';
    const { id } = (await call('POST', '/subjects/norm-value/versions?normalize=true', { schemaType: 'JSON', schema: messy })).body as { id: number };
    expect((await call('GET', `/schemas/ids/${id}`)).body.schema).toBe('{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}');
    const reordered = '{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}';
    expect((await call('POST', '/subjects/norm-value?normalize=true', { schemaType: 'JSON', schema: reordered })).body).toMatchObject({ id, version: 1 });
  });
});

describe("Protobuf as a base64 FileDescriptorProto (Confluent's Python ProtobufSerializer)", () => {
  it('registers, keeps and returns the .proto text; the same text registers as the same schema', async () => {
    const text =
      'syntax = "proto3"; package acme; message Order { string id = 1; repeated Item items = 2; map<string, int64> tags = 3; oneof pay { string card = 4; string iban = 5; } optional int32 qty = 6; message Item { string sku = 1; } }';
    const parsed = protobuf.parse(text, new protobuf.Root(), { keepCase: true });
    const set = (parsed.root as protobuf.Root & { toDescriptor(syntax: string): { file: protobuf.Message[] } }).toDescriptor('proto3');
    const base64 = Buffer.from(descriptor.FileDescriptorProto.encode(set.file[0]!).finish()).toString('base64');
    const registered = await call('POST', '/subjects/proto-value/versions', { schemaType: 'PROTOBUF', schema: base64 });
    expect(registered.status).toBe(200);
    const stored = (await call('GET', '/subjects/proto-value/versions/latest')).body.schema as string;
    expect(stored).toMatch(/^syntax = "proto3";\npackage acme;\n/);
    expect(stored).toContain('map<string, int64> tags = 3;');
    expect(stored).toContain('optional int32 qty = 6;');
    expect(stored).toMatch(/oneof pay \{\n\s+string card = 4;\n\s+string iban = 5;\n\s+\}/);
    expect((await call('POST', '/subjects/proto-value/versions', { schemaType: 'PROTOBUF', schema: stored })).body).toEqual({ id: registered.body.id });
    expect((await call('POST', '/subjects/proto-value/versions', { schemaType: 'PROTOBUF', schema: 'Cg1ub3QgYSBkZXNjcmlwdG9y' })).status).toBe(422);
  });
});

describe('soft-deleting a version with a contract', () => {
  it('deletes it (the record keeps its metadata and ruleSet, so it names the same schema) and keeps the contract for look-ups of deleted versions', async () => {
    const metadata = { properties: { owner: 'ledger' } };
    const registered = await call('POST', '/subjects/ledger-value/versions', { schemaType: 'JSON', schema: SCHEMA, metadata, ruleSet: { domainRules: [POSITIVE] } });
    expect(registered.status).toBe(200);
    const deleted = await call('DELETE', '/subjects/ledger-value/versions/1');
    expect(deleted).toEqual({ status: 200, body: 1 });
    expect((await call('GET', '/subjects/ledger-value/versions')).status).toBe(404);
    expect((await call('GET', '/subjects/ledger-value/versions/1?deleted=true')).body).toMatchObject({ version: 1, metadata });
  });
});
