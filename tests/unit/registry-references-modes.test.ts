import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../core/errors.ts';
import { deleteMode, deleteSubject, deleteVersion, registerSchema, setMode, testCompatibility, type Plan } from '../../registry/commands.ts';
import { decodeRecord, encodeKey, encodeValue, RegistryState } from '../../registry/state.ts';

/** Applies a plan's records as the store would, after they came back from the log. */
function run<T>(state: RegistryState, plan: Plan<T>): T {
  for (const record of plan.records) {
    const outcome = state.apply(decodeRecord(encodeKey(record.key), encodeValue(record)));
    if (!outcome.accepted) throw new Error(outcome.reason);
  }
  return plan.result;
}

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof RegistryError) return error.errorCode;
    throw error;
  }
  return undefined;
}

const money = (fields: string) => `syntax = "proto3";\npackage shared;\nmessage Money {\n${fields}\n}\n`;
const MONEY_V1 = money('  int64 units = 1;\n  string currency = 2;');
const ORDER = 'syntax = "proto3";\npackage shop;\nimport "money.proto";\nmessage Order {\n  string id = 1;\n  shared.Money total = 2;\n}\n';
const moneyRef = { name: 'money.proto', subject: 'money', version: 1 };

const avroMoney = JSON.stringify({ type: 'record', name: 'Money', namespace: 'shared', fields: [{ name: 'units', type: 'long' }] });
const avroOrder = JSON.stringify({ type: 'record', name: 'Order', fields: [{ name: 'total', type: 'shared.Money' }] });

const jsonMoney = JSON.stringify({ $id: 'money.json', type: 'object', properties: { units: { type: 'integer' } }, additionalProperties: false });
const jsonOrder = JSON.stringify({ type: 'object', properties: { total: { $ref: 'money.json' } } });

describe('schema references', () => {
  it.each([
    ['AVRO', avroMoney, avroOrder, 'shared.Money'],
    ['JSON', jsonMoney, jsonOrder, 'money.json'],
    ['PROTOBUF', MONEY_V1, ORDER, 'money.proto'],
  ])('%s: a schema referencing a shared type registers, stores its references and is listed by referencedby', (schemaType, shared, main, name) => {
    const state = new RegistryState();
    run(state, registerSchema(state, 'money', { schema: shared, schemaType }));
    const references = [{ name, subject: 'money', version: 1 }];
    const { id } = run(state, registerSchema(state, 'orders-value', { schema: main, schemaType, references }));
    expect(id).toBe(2);
    expect(state.schemaById(2)?.references).toEqual(references);
    expect(state.referencedBy('money', 1)).toEqual([2]);
    // The same text without its references is another schema.
    expect(state.idOf(state.schemaById(2)!.schema, schemaType)).toBeUndefined();
  });

  it('a schema whose referenced type is missing is refused (the reference is what makes it parse)', () => {
    const state = new RegistryState();
    expect(codeOf(() => registerSchema(state, 'orders-value', { schema: avroOrder }))).toBe(42201);
  });

  it('deleting a referenced version (soft or permanent) or its subject is refused with 42206; once unreferenced it goes', () => {
    const state = new RegistryState();
    run(state, registerSchema(state, 'money', { schema: MONEY_V1, schemaType: 'PROTOBUF' }));
    run(state, registerSchema(state, 'orders-value', { schema: ORDER, schemaType: 'PROTOBUF', references: [moneyRef] }));
    expect(codeOf(() => deleteVersion(state, 'money', 1, false))).toBe(42206);
    expect(codeOf(() => deleteSubject(state, 'money', false))).toBe(42206);
    run(state, deleteSubject(state, 'orders-value', false));
    expect(state.referencedBy('money', 1)).toEqual([]);
    expect(run(state, deleteVersion(state, 'money', 1, false))).toBe(1);
  });

  it('an incompatible change to the shared type is refused naming the field; a compatible one is accepted', () => {
    const state = new RegistryState();
    run(state, registerSchema(state, 'money', { schema: MONEY_V1, schemaType: 'PROTOBUF' }));
    const bad = money('  string units = 1;\n  string currency = 2;');
    expect(() => registerSchema(state, 'money', { schema: bad, schemaType: 'PROTOBUF' })).toThrow(/Money\.units: FIELD_SCALAR_KIND_CHANGED: field 1 changed from int64 to string/);
    expect(testCompatibility(state, 'money', 'latest', { schema: bad, schemaType: 'PROTOBUF' }, true).is_compatible).toBe(false);
    const good = money('  int64 units = 1;\n  string currency = 2;\n  int32 nanos = 3;');
    expect(run(state, registerSchema(state, 'money', { schema: good, schemaType: 'PROTOBUF' }))).toEqual({ id: 2 });
  });

  it('a schema type change within a subject is refused under BACKWARD', () => {
    const state = new RegistryState();
    run(state, registerSchema(state, 's', { schema: jsonMoney, schemaType: 'JSON' }));
    expect(() => registerSchema(state, 's', { schema: MONEY_V1, schemaType: 'PROTOBUF' })).toThrow(/SCHEMA_TYPE_CHANGED/);
  });
});

describe('per-subject mode', () => {
  it('READONLY on one subject refuses its writes with 42205 and leaves other subjects writable; DELETE restores it', () => {
    const state = new RegistryState();
    run(state, registerSchema(state, 'a', { schema: jsonMoney, schemaType: 'JSON' }));
    expect(run(state, setMode(state, 'a', { mode: 'READONLY' }))).toEqual({ mode: 'READONLY' });
    expect([state.effectiveMode('a'), state.effectiveMode('b'), state.mode]).toEqual(['READONLY', 'READWRITE', 'READWRITE']);
    const other = JSON.stringify({ type: 'object', properties: { x: { type: 'string' } } });
    expect(() => registerSchema(state, 'a', { schema: other, schemaType: 'JSON' })).toThrow(/Subject 'a' is in READONLY mode/);
    expect(codeOf(() => registerSchema(state, 'a', { schema: other, schemaType: 'JSON' }))).toBe(42205);
    expect(codeOf(() => deleteSubject(state, 'a', false))).toBe(42205);
    // Looking an existing schema up is not a write.
    expect(registerSchema(state, 'a', { schema: jsonMoney, schemaType: 'JSON' })).toEqual({ records: [], result: { id: 1 } });
    expect(run(state, registerSchema(state, 'b', { schema: other, schemaType: 'JSON' }))).toEqual({ id: 2 });
    expect(run(state, deleteMode(state, 'a'))).toEqual({ mode: 'READONLY' });
    expect(codeOf(() => deleteMode(state, 'a'))).toBe(40409);
    expect(state.effectiveMode('a')).toBe('READWRITE');
  });

  it('IMPORT keeps explicit ids and versions unchecked, refuses colliding ids, and needs force on a non-empty subject', () => {
    const state = new RegistryState();
    run(state, registerSchema(state, 'taken', { schema: jsonMoney, schemaType: 'JSON' }));
    expect(codeOf(() => setMode(state, 'taken', { mode: 'IMPORT' }))).toBe(42205);
    expect(codeOf(() => setMode(state, null, { mode: 'IMPORT' }))).toBe(42205);
    run(state, setMode(state, 'copy', { mode: 'IMPORT' }));
    const schema = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
    expect(run(state, registerSchema(state, 'copy', { schema, id: 100, version: 7 }))).toEqual({ id: 100 });
    expect(state.version('copy', 7)?.id).toBe(100);
    // Unchecked: an incompatible schema is imported too.
    const incompatible = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'b', type: 'string' }] });
    expect(run(state, registerSchema(state, 'copy', { schema: incompatible, id: 101 }))).toEqual({ id: 101 });
    expect(codeOf(() => registerSchema(state, 'copy', { schema: JSON.stringify({ type: 'string' }), id: 1 }))).toBe(42205);
    expect(codeOf(() => registerSchema(state, 'copy', { schema: JSON.stringify({ type: 'string' }) }))).toBe(42205);
    // An explicit id outside IMPORT mode is refused.
    expect(codeOf(() => registerSchema(state, 'other', { schema: JSON.stringify({ type: 'string' }), id: 500 }))).toBe(42205);
    // New ids continue above imported ones.
    expect(run(state, registerSchema(state, 'other', { schema: JSON.stringify({ type: 'string' }) }))).toEqual({ id: 102 });
    expect(run(state, setMode(state, 'taken', { mode: 'IMPORT' }, true))).toEqual({ mode: 'IMPORT' });
  });
});
