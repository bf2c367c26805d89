import { describe, expect, it } from 'vitest';
import { checkCompatibility, COMPATIBILITY_LEVELS } from '../../registry/compatibility.ts';
import { explainSchemaIncompatibility, parseSchema, type ParsedSchema } from '../../registry/schemas.ts';
import { JSON_SCHEMA_CASES } from './compat-cases/json-schema.ts';
import { PROTOBUF_CASES } from './compat-cases/protobuf.ts';

const json = (schema: object): ParsedSchema => parseSchema('JSON', JSON.stringify(schema), []);
const proto = (schema: string): ParsedSchema => parseSchema('PROTOBUF', schema, []);

const check = (level: (typeof COMPATIBILITY_LEVELS)[number], candidate: ParsedSchema, ...previous: ParsedSchema[]) =>
  checkCompatibility(
    level,
    candidate,
    previous.map((type, i) => ({ version: i + 1, type })),
    explainSchemaIncompatibility,
  );

interface ParsedCase {
  name: string;
  rule: string;
  backward: boolean;
  code?: string;
  path?: string;
  oldParsed: ParsedSchema;
  newParsed: ParsedSchema;
}

const FORMATS: [string, ParsedCase[]][] = [
  ['JSON Schema', JSON_SCHEMA_CASES.map((c) => ({ ...c, oldParsed: json(c.old), newParsed: json(c.new) }))],
  ['Protobuf', PROTOBUF_CASES.map((c) => ({ ...c, oldParsed: proto(c.old), newParsed: proto(c.new) }))],
];

describe.each(FORMATS)('%s: the documented cases', (_format, cases) => {
  it.each(cases)('$name → backward $backward ($rule)', (c: ParsedCase) => {
    const reasons = check('BACKWARD', c.newParsed, c.oldParsed);
    if (c.backward) {
      expect(reasons).toEqual([]);
      return;
    }
    expect(reasons.length).toBeGreaterThan(0);
    const named = reasons.find((r) => r.includes(`: ${c.code}: `));
    expect(named, reasons.join('\n')).toBeDefined();
    if (c.path) expect(named).toContain(`${c.path}: ${c.code}`);
  });

  it('every schema is compatible with itself at all seven levels', () => {
    for (const c of cases) for (const level of COMPATIBILITY_LEVELS) expect(check(level, c.newParsed, c.newParsed)).toEqual([]);
  });
});

describe('levels apply the format rules in the right direction', () => {
  // Adding an optional property to a closed model is BACKWARD-compatible; the reverse (removing it) is not.
  const v1 = json({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false });
  const v2 = json({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } }, additionalProperties: false });
  const v3 = json({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false, required: ['a'] });

  it('BACKWARD / FORWARD / FULL', () => {
    expect(check('BACKWARD', v2, v1)).toEqual([]);
    expect(check('FORWARD', v2, v1).join()).toMatch(/FORWARD: version 1 cannot read data written with the new schema: b: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL/);
    expect(check('FULL', v2, v1)).toHaveLength(1);
    expect(check('NONE', v2, v1)).toEqual([]);
  });

  it('transitive levels check every version, plain levels only the latest', () => {
    // v3 (a required, b gone) against [v1, v2]: b removed from a closed model breaks v2; a required breaks both.
    expect(check('BACKWARD', v3, v1, v2).every((m) => m.includes('version 2'))).toBe(true);
    const transitive = check('BACKWARD_TRANSITIVE', v3, v1, v2);
    expect(transitive.some((m) => m.includes('version 1: a: REQUIRED_ATTRIBUTE_ADDED'))).toBe(true);
    // Old readers of a closed model can read v3's documents: requiring a property narrows only what v3 writes.
    expect(check('FORWARD_TRANSITIVE', v3, v1, v2)).toEqual([]);
    expect(check('FULL_TRANSITIVE', v3, v1, v2).length).toBeGreaterThan(check('FULL', v3, v1, v2).length);
  });

  it('Protobuf: adding a field is FULL compatible; changing its wire type is not, in either direction', () => {
    const p1 = proto('syntax = "proto3"; message M { int32 a = 1; }');
    const p2 = proto('syntax = "proto3"; message M { int32 a = 1; string b = 2; }');
    const p3 = proto('syntax = "proto3"; message M { string a = 1; string b = 2; }');
    expect(check('FULL_TRANSITIVE', p2, p1)).toEqual([]);
    const reasons = check('FULL', p3, p2);
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toMatch(/^FULL: the new schema cannot read data written with version 1: M\.a: FIELD_SCALAR_KIND_CHANGED: field 1 changed from int32 to string/);
  });
});
