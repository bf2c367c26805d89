import { afterAll, describe, expect, it } from 'vitest';
import { OverloadedError } from '../../core/errors.ts';
import { jsonSchemaCodec } from '../../core/formats/json-schema.ts';
import { JsonSchemaCompileError, JsonSchemaCompiler } from '../../core/formats/json-schema-compiler.ts';
import type { ResolvedSchema } from '../../core/formats/types.ts';
import { prepareSchemaRequest, parseSchemaRequest } from '../../registry/schemas.ts';
import { RegistryState } from '../../registry/state.ts';

/**
 * JSON Schemas compiled on the compiler's worker thread (ajv's standalone code) and instantiated on the
 * caller's: the validator must answer exactly as one compiled in place, with the formats, the linear
 * pattern engine and references; a schema ajv refuses or cannot compile in time is the schema's fault.
 */
const json = (schema: unknown, references: ResolvedSchema['references'] = []): ResolvedSchema => ({ schemaType: 'JSON', schema: JSON.stringify(schema), references });
const compilers: JsonSchemaCompiler[] = [];
const compiler = (options?: ConstructorParameters<typeof JsonSchemaCompiler>[0]) => {
  const made = new JsonSchemaCompiler(options);
  compilers.push(made);
  return made;
};
afterAll(async () => {
  for (const made of compilers) await made.close();
});
const properties = (n: number, subschema: unknown) => json({ type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, subschema])) });

// A worker thread loads ajv before its first compile: seconds on a busy machine.
describe('JSON Schemas compiled off the event loop', { timeout: 60_000 }, () => {
  it('validate as a validator compiled in place: formats, RE2 patterns, references, 2019-09 and 2020-12 dialects', async () => {
    const shared = compiler();
    const cases: [ResolvedSchema, unknown[]][] = [
      [
        json({ type: 'object', required: ['email', 'sku'], properties: { email: { type: 'string', format: 'email' }, sku: { type: 'string', pattern: '^(a+)+$' }, at: { format: 'date-time' } } }),
        [{ email: 'a@b.org', sku: 'aaa' }, { email: 'nope', sku: `${'a'.repeat(40)}!`, at: 'yesterday' }, {}, 12],
      ],
      [json({ $ref: 'item.json' }, [{ name: 'item.json', schema: JSON.stringify({ type: 'object', properties: { n: { type: 'integer', minimum: 1 } } }) }]), [{ n: 2 }, { n: 0 }, { n: 'x' }]],
      [json({ $schema: 'https://json-schema.org/draft/2020-12/schema', prefixItems: [{ type: 'string' }], items: false }), [['a'], ['a', 1], [1]]],
      [json({ $schema: 'https://json-schema.org/draft/2019-09/schema', properties: { a: { type: 'string' } }, unevaluatedProperties: false }), [{ a: 'x' }, { a: 'x', b: 1 }]],
    ];
    for (const [resolved, values] of cases) {
      const inPlace = jsonSchemaCodec(resolved);
      const offLoop = await shared.codec(resolved);
      expect(offLoop.root).toEqual(inPlace.root);
      for (const value of values) expect(offLoop.validate(value)).toEqual(inPlace.validate(value));
    }
    const [, bad] = cases[0]!;
    expect((await shared.codec(cases[0]![0])).validate(bad[1])).toEqual(expect.arrayContaining([{ path: 'email', message: 'must match format "email", got "nope"' }]));
  });

  it("refuses what ajv refuses, with ajv's words", async () => {
    const shared = compiler();
    await expect(shared.code(json({ type: 'nope' }))).rejects.toThrow(JsonSchemaCompileError);
    await expect(shared.code(json({ type: 'nope' }))).rejects.toThrow(/type/);
    await expect(shared.code(json({ type: 'string', pattern: '(?=a)a' }))).rejects.toThrow(JsonSchemaCompileError);
    await expect(shared.code(json({ $ref: 'missing.json' }))).rejects.toThrow(/missing\.json/);
  });

  it('refuses a schema it cannot compile within the time limit as too complex, then compiles the next on a fresh worker', async () => {
    const hurried = compiler({ timeLimitMs: 1 });
    await expect(hurried.code(properties(1_990, { type: 'string', format: 'email' }))).rejects.toThrow(/too complex: ajv did not compile it within 1 ms/);
    const patient = compiler({ timeLimitMs: 60_000 });
    await expect(patient.code(json({ type: 'string' }))).resolves.toContain('module.exports');
  });

  it('refuses compilations beyond its queue as overload (503, retryable) rather than queueing without bound', async () => {
    const small = compiler({ queueLimit: 1 });
    const schema = properties(200, { type: 'string' });
    const answers = await Promise.allSettled([small.code(schema), small.code(schema), small.code(schema)]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((answers[2] as PromiseRejectedResult).reason).toBeInstanceOf(OverloadedError);
    expect((answers[2] as PromiseRejectedResult).reason).toMatchObject({ statusCode: 503, retryable: true });
  });
});

describe('the registry', { timeout: 60_000 }, () => {
  it("keeps the worker's verdict for the request's plan: the refusal is a 42201 naming ajv's problem, in the plan's order", async () => {
    const state = new RegistryState();
    const body = { schemaType: 'JSON', schema: JSON.stringify({ type: 'object', properties: { a: { type: 'strin' } } }) };
    await prepareSchemaRequest(state, body);
    expect(() => parseSchemaRequest(state, body)).toThrow(expect.objectContaining({ statusCode: 422, errorCode: 42201, message: expect.stringMatching(/^Invalid JSON schema: .*type/) }));
    // A body the plan refuses for another reason is left to it.
    await expect(prepareSchemaRequest(state, { schemaType: 'JSON' })).resolves.toBeUndefined();
  });
});
