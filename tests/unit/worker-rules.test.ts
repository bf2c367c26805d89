import { describe, expect, it, vi } from 'vitest';
import { RegistryError, RuleViolationError } from '../../core/errors.ts';
import { createCodec } from '../../core/formats/index.ts';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../core/config.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { applyInputRules, ruleError, WorkerContracts, type InputPlan } from '../../consumers/contract-rules.ts';
import { deadLetterHeaders, headersToStrings } from '../../consumers/headers.ts';
import { CompiledContract, RULE_HEADERS, type Metadata, type Rule, type RuleSet } from '../../rules/index.ts';

/**
 * Data contracts in a worker (consumers/contract-rules.ts), without Kafka: which rules run on an input
 * record (migrations between its writer's version and the worker's, then READ rules), how they fail
 * (a RuleViolationError naming rule, mode, subject, version and field, which the dead letter's
 * __rule.* headers carry), and the WRITE rules on outputs.
 */

const V1 = { type: 'object', properties: { id: { type: 'string' }, size: { type: 'number' }, ssn: { type: 'string' } }, required: ['id', 'size'], additionalProperties: false };
const V2 = { type: 'object', properties: { id: { type: 'string' }, height: { type: 'number' }, ssn: { type: 'string' } }, required: ['id', 'height'], additionalProperties: false };
const V3 = {
  type: 'object',
  properties: { id: { type: 'string' }, height: { type: 'number' }, unit: { type: 'string' }, ssn: { type: 'string' } },
  required: ['id', 'height', 'unit'],
  additionalProperties: false,
};
const codecOf = (schema: object) => createCodec({ schemaType: 'JSON', schema: JSON.stringify(schema), references: [] });

const version = (v: number, schema: object, ruleSet?: RuleSet, metadata?: Metadata) =>
  new CompiledContract({ subject: 'parcels-value', version: v, id: 100 + v, codec: codecOf(schema), ...(ruleSet ? { ruleSet } : {}), ...(metadata ? { metadata } : {}) });

const migration = (name: string, mode: Rule['mode'], expr: string): Rule => ({ name, kind: 'TRANSFORM', mode, type: 'JSONATA', expr });
const condition = (r: Partial<Rule> & Pick<Rule, 'name' | 'expr'>): Rule => ({ kind: 'CONDITION', mode: 'READ', type: 'CEL', ...r });

const v1 = version(1, V1);
const v2 = version(2, V2, {
  migrationRules: [
    migration('size-to-height', 'UPGRADE', '$merge([$sift($, function($v, $k) {$k != "size"}), {"height": size}])'),
    migration('height-to-size', 'DOWNGRADE', '$merge([$sift($, function($v, $k) {$k != "height"}), {"size": height}])'),
  ],
});
const v3 = version(3, V3, {
  migrationRules: [migration('add-unit', 'UPGRADE', '$merge([$, {"unit": "cm"}])'), migration('drop-unit', 'DOWNGRADE', '$sift($, function($v, $k) {$k != "unit"})')],
});
const plan = (writerVersion: number, readerVersion: number, steps: CompiledContract[], read?: CompiledContract): InputPlan => ({ writerVersion, readerVersion, steps, read });

describe('input rules: migrations, in Confluent order', () => {
  it('upgrades a v1 record through v2 then v3', async () => {
    const verdict = await applyInputRules(plan(1, 3, [v3, v1, v2]), { id: 'p-1', size: 12 }, codecOf(V3));
    expect(verdict).toEqual({ ok: true, value: { id: 'p-1', height: 12, unit: 'cm' } });
  });

  it('downgrades a v3 record with v3 then v2 DOWNGRADE rules', async () => {
    const verdict = await applyInputRules(plan(3, 1, [v1, v2, v3]), { id: 'p-1', height: 12, unit: 'cm' }, codecOf(V1));
    expect(verdict).toEqual({ ok: true, value: { id: 'p-1', size: 12 } });
  });

  it('READ rules of the reader version run on the migrated record', async () => {
    const reader = version(2, V2, { ...v2.ruleSet, domainRules: [condition({ name: 'positive', expr: 'message.height > 0.0' })] });
    const refused = await applyInputRules(plan(1, 2, [v1, reader], reader), { id: 'p-1', size: -1 }, codecOf(V2));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.violations[0]).toMatchObject({ rule: 'positive', mode: 'READ', version: 2 });
    expect(await applyInputRules(plan(1, 2, [v1, reader], reader), { id: 'p-1', size: 4 }, codecOf(V2))).toEqual({ ok: true, value: { id: 'p-1', height: 4 } });
  });

  it('a migration that fails names its rule; one whose result does not fit the reader names the last migration', async () => {
    const broken = version(2, V2, { migrationRules: [migration('divide', 'UPGRADE', '$error("no height for " & id)')] });
    const failed = await applyInputRules(plan(1, 2, [v1, broken]), { id: 'p-1', size: 12 }, codecOf(V2));
    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.error).toBeInstanceOf(RuleViolationError);
    expect(failed.error.violations[0]).toMatchObject({ rule: 'divide', mode: 'UPGRADE', subject: 'parcels-value', version: 2, reason: expect.stringContaining('no height for p-1') });

    const wrong = version(2, V2, { migrationRules: [migration('forgets-height', 'UPGRADE', '$sift($, function($v, $k) {$k != "size"})')] });
    const unfit = await applyInputRules(plan(1, 2, [v1, wrong]), { id: 'p-1', size: 12 }, codecOf(V2));
    expect(unfit.ok).toBe(false);
    if (!unfit.ok) expect(unfit.error.violations[0]).toMatchObject({ rule: 'forgets-height', mode: 'UPGRADE', version: 2, reason: expect.stringContaining('does not fit version 2') });
  });
});

describe('input rules: a migrated Avro record resolved into the reader schema', () => {
  const avro = (fields: object[]) => createCodec({ schemaType: 'AVRO', schema: JSON.stringify({ type: 'record', name: 'Parcel', fields }), references: [] });
  const writer = avro([
    { name: 'id', type: 'string' },
    { name: 'size', type: 'int' },
    { name: 'note', type: 'string' },
  ]);
  const reader = avro([
    { name: 'id', type: 'string' },
    { name: 'height', type: 'int' },
    { name: 'unit', type: 'string', default: 'cm' },
  ]);
  const contract = (v: number, codec: typeof writer, ruleSet?: RuleSet) => new CompiledContract({ subject: 'parcels-value', version: v, id: 200 + v, codec, ...(ruleSet ? { ruleSet } : {}) });
  const upgrade = contract(2, reader, { migrationRules: [migration('size-to-height', 'UPGRADE', '$merge([$sift($, function($v, $k) {$k != "size"}), {"height": size}])')] });

  it('takes the defaults of fields the migration left out and drops fields the reader does not declare, as Avro resolution would', async () => {
    if (reader.schemaType !== 'AVRO') throw new Error('an Avro codec');
    const verdict = await applyInputRules(plan(1, 2, [contract(1, writer), upgrade]), { id: 'p-1', size: 12, note: 'fragile' }, reader, reader.types);
    expect(verdict).toEqual({ ok: true, value: { id: 'p-1', height: 12, unit: 'cm' } });
  });
});

describe('input rules: READ domain rules', () => {
  const read = (rules: Rule[], metadata?: Metadata) => version(2, V2, { domainRules: rules }, metadata);
  const run = (contract: CompiledContract, value: unknown) => applyInputRules(plan(2, 2, [], contract), value, undefined);
  const parcel = { id: 'p-1', height: -3, ssn: '123-45-6789' };

  it('a failing CONDITION with ERROR or DLQ refuses, naming rule, mode, subject and version; NONE passes', async () => {
    for (const onFailure of ['ERROR', 'DLQ'] as const) {
      const verdict = await run(read([condition({ name: 'positive', expr: 'message.height > 0', onFailure, ...(onFailure === 'DLQ' ? { params: { 'dlq.topic': 'x' } } : {}) })]), parcel);
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) expect(verdict.error.violations).toEqual([{ rule: 'positive', mode: 'READ', subject: 'parcels-value', version: 2, reason: "Expr failed: 'message.height > 0'" }]);
    }
    expect(await run(read([condition({ name: 'positive', expr: 'message.height > 0', onFailure: 'NONE' })]), parcel)).toEqual({ ok: true, value: parcel });
  });

  it('WRITEREAD pairs are read second on READ; disabled and WRITE-only rules do not run', async () => {
    const writeread = (onFailure: string) => read([condition({ name: 'positive', mode: 'WRITEREAD', expr: 'message.height > 0', onFailure })]);
    expect((await run(writeread('NONE,ERROR'), parcel)).ok).toBe(false);
    expect((await run(writeread('ERROR,NONE'), parcel)).ok).toBe(true);
    expect((await run(read([condition({ name: 'off', expr: 'false', disabled: true }), condition({ name: 'w', mode: 'WRITE', expr: 'false' })]), parcel)).ok).toBe(true);
  });

  it('a CEL_FIELD condition names the field; a READ transform masks PII before the handler sees it', async () => {
    const tagged = { tags: { '**.ssn': ['PII'] } };
    const field = await run(read([condition({ name: 'short', type: 'CEL_FIELD', tags: ['PII'], expr: 'size(value) < 5' })], tagged), parcel);
    expect(field.ok).toBe(false);
    if (!field.ok) expect(field.error.violations[0]).toMatchObject({ rule: 'short', field: 'ssn' });
    const masked = await run(read([{ name: 'mask', kind: 'TRANSFORM', mode: 'READ', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" }], tagged), parcel);
    expect(masked).toEqual({ ok: true, value: { ...parcel, ssn: '***' } });
    expect(parcel.ssn).toBe('123-45-6789');
  });
});

describe('dead-letter headers of a rule failure', () => {
  it('carry __rule.* naming rule, mode, subject, version and field, and drop a stale rule', () => {
    const error = ruleError({ rule: 'short', subject: 'parcels-value', version: 2, mode: 'READ', action: 'ERROR', reason: 'too long', field: 'ssn' });
    const source = { topic: 'parcels', partition: 1, offset: 9n, key: null, value: Buffer.from('x'), timestamp: 5n, headers: [[RULE_HEADERS.name, Buffer.from('old')]] as [string, Buffer][] };
    const headers = headersToStrings(deadLetterHeaders(source, error, new Date(0)));
    expect(headers).toMatchObject({
      'sluice.error.code': 'SLUICE_RULE_FAILED',
      [RULE_HEADERS.name]: 'short',
      [RULE_HEADERS.mode]: 'READ',
      [RULE_HEADERS.subject]: 'parcels-value',
      [RULE_HEADERS.version]: '2',
      [RULE_HEADERS.field]: 'ssn',
      [RULE_HEADERS.topic]: 'parcels',
      [RULE_HEADERS.exception]: 'too long',
    });
    expect(deadLetterHeaders(source, error, new Date(0)).filter(([n]) => n === RULE_HEADERS.name)).toHaveLength(1);
    expect(headersToStrings(deadLetterHeaders(source, new Error('boom'), new Date(0)))[RULE_HEADERS.name]).toBeUndefined();
  });
});

describe('WorkerContracts against a registry', () => {
  const log = createLogger(loadConfig({ SLUICE_LOG_LEVEL: 'silent' }), 'worker-rules');
  const OUT = { type: 'object', properties: { id: { type: 'string' }, ssn: { type: 'string' }, score: { type: 'number' } }, required: ['id'] };
  const outRules = {
    metadata: { tags: { '**.ssn': ['PII'] } },
    ruleSet: {
      domainRules: [
        { name: 'mask', kind: 'TRANSFORM', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" },
        { name: 'scored', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.score >= 0.0' },
      ],
    },
  };
  const versions: Record<number, object> = { 1: { id: 101, version: 1 }, 2: { id: 102, version: 2, ruleSet: v2.ruleSet }, 3: { id: 103, version: 3, ruleSet: v3.ruleSet } };
  let readerVersion = 2;
  const calls: string[] = [];
  const registry = {
    request: async (method: string, path: string, body?: { schema: string }) => {
      calls.push(`${method} ${path}`);
      if (method === 'POST' && path === '/subjects/parcels-value') return { id: 100 + readerVersion, version: readerVersion };
      if (method === 'POST' && path === '/subjects/scores-value') return { id: 55, version: 4, ...outRules, schema: body?.schema };
      const id = /^\/schemas\/ids\/(\d+)\/versions$/.exec(path);
      if (id) return Number(id[1]) === 999 ? [{ subject: 'other-value', version: 1 }] : [{ subject: 'parcels-value', version: Number(id[1]) - 100 }];
      const v = /^\/subjects\/parcels-value\/versions\/(\d+)\?deleted=true$/.exec(path);
      if (v && versions[Number(v[1])]) return versions[Number(v[1])];
      throw RegistryError.versionNotFound('parcels-value', path);
    },
    codecById: async (id: number) => codecOf(id === 101 ? V1 : id === 102 ? V2 : V3),
  } as unknown as RegistryClient;
  const contracts = () =>
    new WorkerContracts({
      registry,
      input: { subject: 'parcels-value', schemaId: 0, codec: codecOf(V2), schemaText: JSON.stringify(V2) },
      output: { subject: 'scores-value', schemaId: 50, codec: codecOf(OUT), schemaText: JSON.stringify(OUT) },
      log,
    });

  it('plans migrations from the writer version to the reader version, once per writer id', async () => {
    const c = contracts();
    await c.start(60_000);
    try {
      const fromV1 = await c.plan(101);
      expect(fromV1).toMatchObject({ writerVersion: 1, readerVersion: 2 });
      expect(fromV1!.steps.map((s) => s.version)).toEqual([2]);
      expect(await applyInputRules(fromV1!, { id: 'p', size: 3 }, codecOf(V2))).toEqual({ ok: true, value: { id: 'p', height: 3 } });
      const asked = calls.length;
      expect(c.plan(101)).toBe(fromV1);
      expect(calls.length).toBe(asked);
      // Same version, no READ rules; and a writer of another subject: nothing to do.
      expect(await c.plan(102)).toBeUndefined();
      expect(await c.plan(999)).toBeUndefined();
      // A v3 record downgraded for the v2 reader by v3's DOWNGRADE rule.
      const fromV3 = await c.plan(103);
      expect(await applyInputRules(fromV3!, { id: 'p', height: 3, unit: 'cm' }, codecOf(V2))).toEqual({ ok: true, value: { id: 'p', height: 3 } });
    } finally {
      c.stop();
    }
  });

  it('plans nothing when only the writer version itself has UPGRADE rules (they migrate into it, not out of it)', async () => {
    const saved = versions[3];
    versions[3] = { id: 103, version: 3 };
    readerVersion = 3;
    const c = contracts();
    await c.start(60_000);
    try {
      expect(await c.plan(102)).toBeUndefined();
    } finally {
      c.stop();
      versions[3] = saved!;
      readerVersion = 2;
    }
  });

  it('runs the output subject WRITE rules (mask, condition) and frames with the id that carries them', async () => {
    const c = contracts();
    await c.start(60_000);
    try {
      expect(c.writes).toBe(true);
      expect(await c.write([{ id: 'a', ssn: '1', score: 1 }])).toEqual([{ id: 'a', ssn: '***', score: 1 }]);
      const refused = await c
        .write([
          { id: 'a', score: 1 },
          { id: 'b', score: -1 },
        ])
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RuleViolationError);
      expect((refused as RuleViolationError).violations[0]).toMatchObject({ rule: 'scored', mode: 'WRITE', subject: 'scores-value', version: 4 });
      expect(c.encoder().schemaId).toBe(55);
      expect(c.encoder().encode({ id: 'a' }).readUInt32BE(1)).toBe(55);
    } finally {
      c.stop();
    }
  });
});

describe('WorkerContracts pinned by metadata (input.useLatestWithMetadata)', () => {
  const log = createLogger(loadConfig({ SLUICE_LOG_LEVEL: 'silent' }), 'worker-pinned');
  const OUT = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] };
  const versions: Record<number, object> = { 1: { id: 101, version: 1 }, 2: { id: 102, version: 2, ruleSet: v2.ruleSet }, 3: { id: 103, version: 3, ruleSet: v3.ruleSet } };
  /** The version the metadata look-up answers; undefined: none has the properties (404). */
  let latestWithMetadata: number | undefined = 1;
  const asked: string[] = [];
  const registry = {
    request: async (method: string, path: string) => {
      if (method === 'GET' && path.startsWith('/subjects/parcels-value/metadata?')) {
        asked.push(path);
        if (latestWithMetadata === undefined) throw RegistryError.schemaNotFound("No version of 'parcels-value' has metadata major_version=9");
        return versions[latestWithMetadata];
      }
      if (method === 'POST' && path === '/subjects/scores-value') return { id: 55, version: 1 };
      const id = /^\/schemas\/ids\/(\d+)\/versions$/.exec(path);
      if (id) return [{ subject: 'parcels-value', version: Number(id[1]) - 100 }];
      const v = /^\/subjects\/parcels-value\/versions\/(\d+)\?deleted=true$/.exec(path);
      if (v && versions[Number(v[1])]) return versions[Number(v[1])];
      throw new Error(`unexpected ${method} ${path}`);
    },
    codecById: async (id: number) => codecOf(id === 101 ? V1 : id === 102 ? V2 : V3),
  } as unknown as RegistryClient;
  const pinned = (properties: Record<string, string>) =>
    new WorkerContracts({
      registry,
      // The topology's input schema is v3; the pin, not it, decides what the worker reads with.
      input: { subject: 'parcels-value', schemaId: 0, codec: codecOf(V3), schemaText: JSON.stringify(V3) },
      output: { subject: 'scores-value', schemaId: 50, codec: codecOf(OUT), schemaText: JSON.stringify(OUT) },
      useLatestWithMetadata: properties,
      log,
    });

  it('reads with the version the metadata look-up names, downgrading newer records to it, and follows the registry', async () => {
    latestWithMetadata = 1;
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const c = pinned({ major_version: '1', 'owner team': 'a&b' });
    await c.start(2_000);
    try {
      expect(asked.at(-1)).toBe('/subjects/parcels-value/metadata?deleted=true&key=major_version&value=1&key=owner%20team&value=a%26b');
      // The reader is v1's schema: a v2 record fits it only after the DOWNGRADE rule.
      expect(c.reader().codec.validate({ id: 'p', size: 1 })).toEqual([]);
      const fromV3 = (await c.plan(103))!;
      expect(fromV3).toMatchObject({ writerVersion: 3, readerVersion: 1 });
      expect(await applyInputRules(fromV3, { id: 'p', height: 7, unit: 'cm' }, c.reader().codec)).toEqual({ ok: true, value: { id: 'p', size: 7 } });
      expect(await c.plan(101)).toBeUndefined();

      // A new version with the properties: the next refresh reads with it and plans again.
      latestWithMetadata = 2;
      await vi.advanceTimersByTimeAsync(2_000);
      const fromV1 = (await c.plan(101))!;
      expect(fromV1).toMatchObject({ writerVersion: 1, readerVersion: 2 });
      expect(await applyInputRules(fromV1, { id: 'p', size: 4 }, c.reader().codec)).toEqual({ ok: true, value: { id: 'p', height: 4 } });
    } finally {
      c.stop();
      vi.useRealTimers();
    }
  });

  it('a start without any version of the properties fails (404), naming them', async () => {
    latestWithMetadata = undefined;
    const c = pinned({ major_version: '9' });
    await expect(c.start(60_000)).rejects.toThrow(/major_version=9/);
    c.stop();
    latestWithMetadata = 1;
  });
});
