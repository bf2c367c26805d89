import avro, { type Schema } from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../core/errors.ts';
import { checkCompatibility, explainIncompatibility, parseAvroSchema, type CompatibilityLevel } from '../../registry/compatibility.ts';

const type = (schema: unknown) => parseAvroSchema(JSON.stringify(schema));
/** Reasons `reader` cannot read data written with `writer`. */
const reasons = (reader: unknown, writer: unknown) => explainIncompatibility(type(reader), type(writer));
const check = (level: CompatibilityLevel, candidate: unknown, ...previous: unknown[]) =>
  checkCompatibility(
    level,
    type(candidate),
    previous.map((p, i) => ({ version: i + 1, type: type(p) })),
  );

const record = (fields: unknown[], extra: Record<string, unknown> = {}) => ({ type: 'record', name: 'R', fields, ...extra });
const int = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'int', ...extra });

describe('Avro resolution rules', () => {
  it.each([
    ['long', 'int'],
    ['float', 'int'],
    ['double', 'int'],
    ['float', 'long'],
    ['double', 'long'],
    ['double', 'float'],
    ['string', 'bytes'],
    ['bytes', 'string'],
  ])('%s reads %s (promotion)', (reader, writer) => {
    expect(reasons(reader, writer)).toEqual([]);
  });

  it.each([
    ['int', 'long'],
    ['long', 'double'],
    ['float', 'double'],
    ['int', 'string'],
  ])('%s cannot read %s, and the reason names the rule', (reader, writer) => {
    const r = reasons(reader, writer);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(/TYPE_MISMATCH: reader type \w+ cannot read writer type \w+/);
  });

  it('an added field needs a default; the reason names the field', () => {
    expect(reasons(record([int('a'), int('b', { default: 0 })]), record([int('a')]))).toEqual([]);
    const r = reasons(record([int('a'), int('b')]), record([int('a')]));
    expect(r).toEqual([expect.stringMatching(/^R\.b: READER_FIELD_MISSING_DEFAULT_VALUE: field 'b'/)]);
  });

  it('a removed field is ignored by the reader', () => {
    expect(reasons(record([int('a')]), record([int('a'), int('b')]))).toEqual([]);
  });

  it('field aliases let a field be renamed', () => {
    expect(reasons(record([int('renamed', { aliases: ['a'] })]), record([int('a')]))).toEqual([]);
    expect(reasons(record([int('renamed')]), record([int('a')]))[0]).toMatch(/R\.renamed: READER_FIELD_MISSING_DEFAULT_VALUE/);
  });

  it('record aliases let a record be renamed', () => {
    expect(reasons(record([int('a')], { name: 'S', aliases: ['R'] }), record([int('a')]))).toEqual([]);
    expect(reasons(record([int('a')], { name: 'S' }), record([int('a')]))[0]).toMatch(/NAME_MISMATCH: reader record S does not match writer record R/);
  });

  describe('enums', () => {
    const abc = { type: 'enum', name: 'E', symbols: ['A', 'B', 'C'] };
    const ab = { type: 'enum', name: 'E', symbols: ['A', 'B'] };
    const abDefault = { ...ab, default: 'A' };

    it('a reader with more symbols reads a writer with fewer', () => {
      expect(reasons(abc, ab)).toEqual([]);
    });

    it('a writer symbol missing in the reader is incompatible, and named', () => {
      expect(reasons(ab, abc)).toEqual([expect.stringMatching(/MISSING_ENUM_SYMBOLS: reader enum E lacks writer symbol\(s\) C/)]);
    });

    it('... unless the reader enum has a default, which avsc then uses for the unknown symbol', () => {
      expect(reasons(abDefault, abc)).toEqual([]);
      const writer = avro.Type.forSchema(abc as Schema);
      const reader = avro.Type.forSchema(abDefault as Schema);
      expect(reader.fromBuffer(writer.toBuffer('C'), reader.createResolver(writer))).toBe('A');
    });
  });

  describe('unions', () => {
    it('a union reader reads a writer matching one branch (with promotion)', () => {
      expect(reasons(['null', 'int'], 'int')).toEqual([]);
      expect(reasons(['null', 'long'], ['null', 'int'])).toEqual([]);
    });

    it('every writer branch must be readable', () => {
      expect(reasons('int', ['null', 'int'])).toEqual([expect.stringMatching(/TYPE_MISMATCH: reader type int cannot read writer type null/)]);
      expect(reasons(['null', 'string'], ['null', 'int'])).toEqual([expect.stringMatching(/MISSING_UNION_BRANCH: writer type int/)]);
    });
  });

  it('nested records report the full path of the field', () => {
    const outer = (inner: unknown) => ({ type: 'record', name: 'Outer', fields: [{ name: 'inner', type: inner }] });
    const r = reasons(outer(record([int('a'), int('b')])), outer(record([int('a')])));
    expect(r).toEqual([expect.stringMatching(/^Outer\.inner\.b: READER_FIELD_MISSING_DEFAULT_VALUE/)]);
    const arrays = reasons({ type: 'array', items: record([{ name: 'a', type: 'int' }]) }, { type: 'array', items: record([{ name: 'a', type: 'long' }]) });
    expect(arrays).toEqual([expect.stringMatching(/^\[\]\.a: TYPE_MISMATCH: reader type int cannot read writer type long/)]);
  });

  it('recursive records are checked without looping', () => {
    const node = (fields: unknown[]) => ({
      type: 'record',
      name: 'Node',
      fields: [{ name: 'next', type: ['null', 'Node'], default: null }, ...fields],
    });
    expect(reasons(node([{ name: 'v', type: 'long' }]), node([{ name: 'v', type: 'int' }]))).toEqual([]);
    expect(reasons(node([{ name: 'v', type: 'int' }]), node([{ name: 'v', type: 'long' }]))).toEqual([expect.stringMatching(/^Node\.v: TYPE_MISMATCH/)]);
    expect(reasons(node([int('v'), int('w')]), node([int('v')]))).toEqual([expect.stringMatching(/^Node\.w: READER_FIELD_MISSING/)]);
  });

  it('fixed sizes must match', () => {
    expect(reasons({ type: 'fixed', name: 'F', size: 4 }, { type: 'fixed', name: 'F', size: 8 })[0]).toMatch(/FIXED_SIZE_MISMATCH: reader fixed F has size 4, writer has size 8/);
  });

  it('refuses an invalid schema with 42201', () => {
    expect(() => parseAvroSchema('{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}')).toThrow(
      expect.objectContaining({ errorCode: 42201, message: expect.stringMatching(/undefined type name: nope/) }),
    );
    expect(() => parseAvroSchema('{not json')).toThrowError(RegistryError);
  });
});

describe('compatibility levels', () => {
  const v1 = record([int('a')]);
  const addedWithDefault = record([int('a'), int('b', { default: 1 })]);
  const addedWithoutDefault = record([int('a'), int('b')]);
  const removedA = record([int('b', { default: 1 })]);

  it('NONE accepts anything', () => {
    expect(check('NONE', 'string', v1)).toEqual([]);
  });

  it('BACKWARD: the new schema must read the latest', () => {
    expect(check('BACKWARD', addedWithDefault, v1)).toEqual([]);
    expect(check('BACKWARD', addedWithoutDefault, v1)).toEqual([expect.stringMatching(/^BACKWARD: the new schema cannot read data written with version 1: R\.b/)]);
  });

  it('FORWARD: the latest must read the new schema', () => {
    expect(check('FORWARD', addedWithoutDefault, v1)).toEqual([]);
    expect(check('FORWARD', removedA, v1)).toEqual([expect.stringMatching(/^FORWARD: version 1 cannot read data written with the new schema: R\.a/)]);
  });

  it('FULL: both directions', () => {
    expect(check('FULL', addedWithDefault, v1)).toEqual([]);
    expect(check('FULL', addedWithoutDefault, v1)).toHaveLength(1);
    expect(check('FULL', removedA, v1)).toHaveLength(1);
  });

  // v1 {a:int}; v2 adds b with a default; v3 makes b required. v3 reads v2 (b present) but not v1.
  const chain = [v1, addedWithDefault];
  const v3 = record([int('a'), int('b')]);

  it.each([
    ['BACKWARD', 0],
    ['BACKWARD_TRANSITIVE', 1],
  ] as const)('%s on v1 -> v2 -> v3 gives %i reason(s)', (level, count) => {
    const r = check(level, v3, ...chain);
    expect(r).toHaveLength(count);
    if (count > 0) expect(r[0]).toMatch(/version 1: R\.b: READER_FIELD_MISSING_DEFAULT_VALUE/);
  });

  it('FORWARD_TRANSITIVE and FULL_TRANSITIVE check every earlier version', () => {
    // w1 {a, b}, w2 {a, b default}: dropping b is fine for w2 (it has a default) but not for w1.
    const w1 = record([int('a'), int('b')]);
    const w2 = record([int('a'), int('b', { default: 0 })]);
    const dropped = record([int('a')]);
    expect(check('FORWARD', dropped, w1, w2)).toEqual([]);
    expect(check('FORWARD_TRANSITIVE', dropped, w1, w2)).toEqual([expect.stringMatching(/version 1 cannot read/)]);
    expect(check('FULL', dropped, w1, w2)).toEqual([]);
    expect(check('FULL_TRANSITIVE', dropped, w1, w2)).toHaveLength(1);
  });

  const primitive = fc.constantFrom('int', 'long', 'float', 'double', 'string', 'bytes', 'boolean');
  const fieldName = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/);
  const recordSchema = fc.uniqueArray(fc.tuple(fieldName, primitive), { minLength: 1, maxLength: 6, selector: ([n]) => n }).map((fields) => record(fields.map(([name, t]) => ({ name, type: t }))));

  it('property: every schema is compatible with itself at every level', () => {
    fc.assert(
      fc.property(recordSchema, fc.constantFrom<CompatibilityLevel>('BACKWARD', 'FORWARD', 'FULL_TRANSITIVE'), (schema, level) => {
        expect(check(level, schema, schema, schema)).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it('property: adding a field with a default is FULL compatible; without one it is not BACKWARD compatible', () => {
    fc.assert(
      fc.property(recordSchema, (schema) => {
        const fields = schema.fields as { name: string }[];
        const name = `added_${fields.length}`;
        expect(check('FULL', record([...fields, { name, type: 'string', default: '' }]), schema)).toEqual([]);
        expect(check('BACKWARD', record([...fields, { name, type: 'string' }]), schema)).toEqual([expect.stringContaining(`R.${name}: READER_FIELD_MISSING_DEFAULT_VALUE`)]);
      }),
      { numRuns: 100 },
    );
  });
});
