import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsonSchemaCodec } from '../../core/formats/json-schema.ts';
import { checkCompatibility } from '../../registry/compatibility.ts';
import { explainSchemaIncompatibility, parseSchema, type ParsedSchema } from '../../registry/schemas.ts';

/**
 * Confluent's own verdicts, case by case: the facts of the
 * `diff-schema-examples*.json` and `diff-combined-schema-examples.json` files
 * of its json-schema-provider and protobuf-provider (original schema, updated
 * schema, whether the update can read what the original wrote), copied into
 * fixtures here. Every case must get Confluent's verdict.
 */

interface JsonCase {
  set: string;
  description: string;
  original: object;
  update: object;
  compatible: boolean;
}
interface ProtoCase {
  description: string;
  original: string;
  update: string;
  compatible: boolean;
  original_dependencies?: { name: string; dependency: string }[];
  update_dependencies?: { name: string; dependency: string }[];
}

const load = <T>(name: string): T[] => JSON.parse(readFileSync(new URL(`./compat-cases/${name}`, import.meta.url), 'utf8')) as T[];
const JSON_CASES = load<JsonCase>('confluent-json-schema.json');
const PROTO_CASES = load<ProtoCase>('confluent-protobuf.json');

const json = (schema: object): ParsedSchema => parseSchema('JSON', JSON.stringify(schema), []);
const deps = (list: ProtoCase['original_dependencies']) => (list ?? []).map((d) => ({ name: d.name, schema: d.dependency }));

describe("Confluent's JSON Schema diff cases", () => {
  it('covers its three files', () => {
    expect(new Set(JSON_CASES.map((c) => c.set))).toEqual(new Set(['draft-07', '2020-12', 'combined']));
    expect(JSON_CASES.length).toBe(245);
  });
  it.each(JSON_CASES.map((c) => [`${c.set}: ${c.description}`, c] as const))('%s', (_name, c) => {
    const reasons = explainSchemaIncompatibility(json(c.update), json(c.original));
    expect(reasons.length === 0, reasons.join('; ')).toBe(c.compatible);
  });
});

describe("Confluent's Protobuf diff cases", () => {
  it.each(PROTO_CASES.map((c) => [c.description, c] as const))('%s', (_name, c) => {
    const original = parseSchema('PROTOBUF', c.original, deps(c.original_dependencies));
    const update = parseSchema('PROTOBUF', c.update, deps(c.update_dependencies));
    const reasons = explainSchemaIncompatibility(update, original);
    expect(reasons.length === 0, reasons.join('; ')).toBe(c.compatible);
  });
});

describe('FULL with a closed content model', () => {
  it('allows adding a property whose schema is false, and refuses adding a typed one', () => {
    const v1 = json({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false });
    const withFalse = json({ type: 'object', properties: { a: { type: 'string' }, b: false }, additionalProperties: false });
    const withTyped = json({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, additionalProperties: false });
    const full = (candidate: ParsedSchema) => checkCompatibility('FULL', candidate, [{ version: 1, type: v1 }], explainSchemaIncompatibility);
    expect(full(withFalse)).toEqual([]);
    expect(full(withTyped)).toEqual([expect.stringContaining('PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL')]);
  });
});

describe('JSON Schema $ref relative to $id', () => {
  it("registers Confluent's REST test: ref.json under https://acme.com/referrer.json", () => {
    const ref = { type: 'object', additionalProperties: false, definitions: { ExternalType: { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: false } } };
    const referrer = {
      $id: 'https://acme.com/referrer.json',
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { Ref: { $ref: 'ref.json#/definitions/ExternalType' } },
      additionalProperties: false,
    };
    const references = [{ name: 'ref.json', schema: JSON.stringify(ref) }];
    const parsed = parseSchema('JSON', JSON.stringify(referrer), references);
    // The registry keeps the parsed documents; the validator the services compile from the same texts resolves the reference.
    const codec = jsonSchemaCodec({ schemaType: 'JSON', schema: JSON.stringify(referrer), references });
    expect(codec.validate({ Ref: { name: 'x' } })).toEqual([]);
    expect(codec.validate({ Ref: { name: 1 } })).toEqual([{ path: 'Ref.name', message: 'expected string, got number 1' }]);
    const narrowed = { ...ref, definitions: { ExternalType: { ...ref.definitions.ExternalType, properties: { name: { type: 'string', maxLength: 3 } } } } };
    const next = parseSchema('JSON', JSON.stringify(referrer), [{ name: 'ref.json', schema: JSON.stringify(narrowed) }]);
    expect(explainSchemaIncompatibility(next, parsed)).toEqual([expect.stringContaining('MAX_LENGTH_ADDED')]);
  });
});
