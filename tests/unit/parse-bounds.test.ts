import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../access/permissions.ts';
import { parseProtoFile } from '../../core/formats/protobuf.ts';
import { jsonBeyondBounds } from '../../core/json.ts';
import { MAX_JSON_SCHEMA_CONTAINERS, MAX_SCHEMA_DEPTH, MAX_SCHEMA_URI, parseSchemaRequest } from '../../registry/schemas.ts';
import { normalizeSchema, RegistryState, withoutBlockComments } from '../../registry/state.ts';

/**
 * Parsers of user text on pathological input of the registry's body limit (1 MiB). Each of these shapes took
 * seconds to hours before (quadratic or worse regexes, ajv compiling 40,000 subschemas), so vitest's timeout
 * is the guard: these are not timing assertions, a linear parse finishes in milliseconds.
 */
const MiB = 1024 * 1024;
const fill = (unit: string, size = MiB): string => unit.repeat(Math.floor(size / unit.length));

describe('Protobuf schema text', () => {
  it('finds the syntax line in linear time, also after 1 MiB of newlines or blanks', () => {
    expect(parseProtoFile({ schemaType: 'PROTOBUF', schema: `${fill('\n')}syntax = "proto3";\nmessage A { int32 a = 1; }`, references: [] }).syntax).toBe('proto3');
    expect(parseProtoFile({ schemaType: 'PROTOBUF', schema: `${fill(' \n\t')}message A { optional int32 a = 1; }`, references: [] }).syntax).toBe('proto2');
    expect(parseProtoFile({ schemaType: 'PROTOBUF', schema: `  syntax = 'proto3';\nmessage A { int32 a = 1; }`, references: [] }).syntax).toBe('proto3');
  });

  it('normalizes 1 MiB of unclosed comments, line comments and punctuation', () => {
    for (const unit of ['/* x', '/*\n', '//', '{ ', '};', ' =\n']) expect(typeof normalizeSchema(fill(unit), 'PROTOBUF')).toBe('string');
  });

  it('strips block comments exactly as the regex it replaces (schema identities depend on it)', () => {
    const piece = fc.constantFrom('/*', '*/', '/', '*', ' ', '\n', 'a', '//', '/*/', '**');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const text = pieces.join('');
        expect(withoutBlockComments(text)).toBe(text.replace(/\/\*[\s\S]*?\*\//g, ' '));
      }),
      { numRuns: 500 },
    );
  });
});

describe('Avro and JSON Schema text', () => {
  const state = new RegistryState();
  const submit = (schemaType: string, schema: string) => () => parseSchemaRequest(state, { schemaType, schema });

  it('refuses nesting beyond the bound with 422 naming the field, before any recursive parser runs', () => {
    const deep = (n: number) => `${'{"type":"array","items":'.repeat(n)}"int"${'}'.repeat(n)}`;
    expect(() => parseSchemaRequest(state, { schema: deep(MAX_SCHEMA_DEPTH) })).not.toThrow();
    for (const [type, schema] of [
      ['AVRO', deep(MAX_SCHEMA_DEPTH + 1)],
      ['AVRO', `${fill('[', MiB / 2)}${fill(']', MiB / 2)}`],
      ['JSON', `${'{"properties":{"a":'.repeat(50_000)}{}${'}}'.repeat(50_000)}`],
      ['JSON', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`],
    ] as const) {
      expect(submit(type, schema)).toThrow(expect.objectContaining({ statusCode: 422, errorCode: 42201, message: expect.stringContaining('"schema" is nested more than 128') }));
    }
  });

  it('refuses a JSON Schema of more subschemas than ajv compiles in reasonable time', () => {
    const properties = (n: number) => `{"type":"object","properties":{${Array.from({ length: n }, (_, i) => `"p${i}":{"type":"string"}`).join(',')}}}`;
    expect(submit('JSON', properties(MAX_JSON_SCHEMA_CONTAINERS / 2))).not.toThrow();
    expect(submit('JSON', properties(MiB / 24))).toThrow(expect.objectContaining({ statusCode: 422, message: expect.stringContaining(`holds more than ${MAX_JSON_SCHEMA_CONTAINERS}`) }));
    expect(submit('JSON', `{"anyOf":[${Array.from({ length: MiB / 20 }, () => '{"type":"string"}').join(',')}]}`)).toThrow(expect.objectContaining({ statusCode: 422 }));
  });

  it('refuses a $ref, $id or reference name longer than the URI bound (ajv resolves each as a URI: 1 MiB took seconds)', () => {
    const long = (prefix: string) => `${prefix}${'x'.repeat(MiB - 100)}`;
    for (const [schema, pointer] of [
      [{ $ref: long('#/') }, '/$ref'],
      [{ definitions: { a: {} }, properties: { 'p/~': { $ref: long('#/definitions/') } } }, '/properties/p~1~0/$ref'],
      [{ $id: long('http://example.com/') }, '/$id'],
      [{ $schema: long('http://example.com/') }, '/$schema'],
      [{ items: [{ $anchor: long('a') }] }, '/items/0/$anchor'],
    ] as const) {
      expect(submit('JSON', JSON.stringify(schema))).toThrow(
        expect.objectContaining({ statusCode: 422, errorCode: 42201, message: `Invalid JSON schema: "schema" at ${pointer} is longer than ${MAX_SCHEMA_URI} characters` }),
      );
    }
    // At the bound it compiles. A long string under another key is data; under a URI keyword it is refused even
    // inside a const (telling schema positions from data would take a walk of every dialect's keywords).
    expect(submit('JSON', JSON.stringify({ $id: `http://example.com/${'x'.repeat(MAX_SCHEMA_URI - 19)}`, type: 'string' }))).not.toThrow();
    expect(submit('JSON', JSON.stringify({ const: { $ref: 'x'.repeat(MiB / 2) } }))).toThrow(expect.objectContaining({ statusCode: 422 }));
    expect(submit('JSON', JSON.stringify({ enum: ['x'.repeat(MiB / 2)] }))).not.toThrow();
    expect(() => parseSchemaRequest(state, { schema: '"int"', references: [{ name: 'n'.repeat(MAX_SCHEMA_URI + 1), subject: 's', version: 1 }] })).toThrow(
      expect.objectContaining({ statusCode: 422, message: `references[0].name is longer than ${MAX_SCHEMA_URI} characters` }),
    );
  });

  it('reads 1 MiB Avro names, namespaces and docs', () => {
    for (const record of [
      { type: 'record', name: 'a'.repeat(MiB - 100), fields: [] },
      { type: 'record', name: `${'a.'.repeat(MiB / 2 - 100)}a`, fields: [] },
      { type: 'record', name: 'R', doc: 'x'.repeat(MiB - 100), fields: [] },
    ]) {
      expect(submit('AVRO', JSON.stringify(record))).not.toThrow();
    }
  });

  it('measures depth and size without recursion', () => {
    expect(jsonBeyondBounds(JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), 10)).toMatch(/nested more than 10/);
    expect(jsonBeyondBounds({ a: [{}, {}] }, 3, 4)).toBeUndefined();
    expect(jsonBeyondBounds({ a: [{}, {}] }, 2, 4)).toMatch(/nested/);
    expect(jsonBeyondBounds({ a: [{}, {}] }, 3, 3)).toMatch(/more than 3/);
  });
});

describe('permission globs', () => {
  it('match as the documented globs do', () => {
    const cases: [string, string, boolean][] = [
      ['orders.*', 'orders.placed-value', true],
      ['orders.*', 'order.placed', false],
      ['*-value', 'orders.placed-value', true],
      ['a?c', 'abc', true],
      ['a?c', 'ac', false],
      ['*', '', true],
      ['/v1/*', '/v1/orders', true],
      ['a*b*c', 'aXbYc', true],
      ['a*b*c', 'aXbY', false],
      ['x.y', 'xzy', false],
    ];
    for (const [glob, name, expected] of cases) expect(compileGlob(glob).test(name), `${glob} ~ ${name}`).toBe(expected);
  });

  it('match a 1 MiB name against many stars in linear time', () => {
    expect(compileGlob('*-*-*-*-*-*x').test('-'.repeat(MiB))).toBe(false);
  });
});
