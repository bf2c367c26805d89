import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors.ts';
import { createCodec, encodeValidated, schemaTypeOfFile, type ResolvedSchema } from '../../core/formats/index.ts';
import { decodeMessageIndexes, encodeMessageIndexes } from '../../core/formats/protobuf.ts';

const MONEY_AVRO = JSON.stringify({
  type: 'record',
  name: 'Money',
  namespace: 'shared',
  fields: [
    { name: 'units', type: 'long' },
    { name: 'currency', type: 'string' },
  ],
});
const MONEY_JSON = JSON.stringify({
  $id: 'https://sluice.dev/money.json',
  type: 'object',
  properties: { units: { type: 'integer' }, currency: { type: 'string', enum: ['EUR', 'USD'] } },
  required: ['units', 'currency'],
  additionalProperties: false,
});
const MONEY_PROTO = 'syntax = "proto3";\npackage shared;\nmessage Money { int64 units = 1; string currency = 2; }\n';

const avro: ResolvedSchema = {
  schemaType: 'AVRO',
  schema: JSON.stringify({
    type: 'record',
    name: 'Order',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'total', type: 'shared.Money' },
    ],
  }),
  references: [{ name: 'shared.Money', schema: MONEY_AVRO }],
};
const json: ResolvedSchema = {
  schemaType: 'JSON',
  schema: JSON.stringify({ type: 'object', properties: { id: { type: 'string' }, total: { $ref: 'https://sluice.dev/money.json' } }, required: ['id', 'total'] }),
  references: [{ name: 'https://sluice.dev/money.json', schema: MONEY_JSON }],
};
const proto: ResolvedSchema = {
  schemaType: 'PROTOBUF',
  schema:
    'syntax = "proto3";\npackage shop;\nimport "money.proto";\nmessage Order {\n  string id = 1;\n  shared.Money total = 2;\n  repeated Line lines = 3;\n  message Line { string sku = 1; int32 qty = 2; }\n}\nmessage Refund { string id = 1; }\n',
  references: [{ name: 'money.proto', schema: MONEY_PROTO }],
};

const order = { id: 'o-1', total: { units: 2 ** 53 + 10, currency: 'EUR' } };

describe.each([
  ['AVRO', avro],
  ['JSON', json],
  ['PROTOBUF', proto],
] as const)('%s codec with a referenced Money type', (_type, resolved) => {
  const codec = createCodec(resolved);

  it('validates, encodes and decodes back the same value (64-bit integers exact)', () => {
    const value = { ...order, total: { units: 2n ** 62n, currency: 'EUR' } };
    expect(codec.validate(value)).toEqual([]);
    const decoded = codec.decode(encodeValidated(codec, value)) as Record<string, unknown>;
    expect(decoded.id).toBe('o-1');
    expect(decoded.total).toEqual({ units: 2n ** 62n, currency: 'EUR' });
  });

  it('names the path of each bad field, including inside the referenced type', () => {
    const violations = codec.validate({ id: 7, total: { units: 'many', currency: 'EUR' } });
    expect(violations.map((v) => v.path).sort()).toEqual(['id', 'total.units']);
    expect(() => encodeValidated(codec, { id: 'x', total: { units: 1, currency: 'EUR', extra: 1 } })).toThrow(ValidationError);
    const unknown = codec.validate({ id: 'x', total: { units: 1, currency: 'EUR', extra: 1 } });
    expect(unknown).toEqual([expect.objectContaining({ path: 'total.extra' })]);
  });
});

describe('JSON Schema bodies', () => {
  it('are the UTF-8 JSON text of the value', () => {
    const codec = createCodec(json);
    expect(codec.encode({ id: 'a', total: { units: 1, currency: 'USD' } }).toString('utf8')).toBe('{"id":"a","total":{"units":1,"currency":"USD"}}');
  });

  it('name missing required fields and enum mismatches', () => {
    const codec = createCodec(json);
    expect(codec.validate({ total: { units: 1, currency: 'GBP' } })).toEqual([
      { path: 'id', message: 'required field is missing' },
      { path: 'total.currency', message: 'expected one of "EUR", "USD", got "GBP"' },
    ]);
  });
});

describe('JSON Schema patterns', () => {
  const patterned = (pattern: string): ResolvedSchema => ({
    schemaType: 'JSON',
    schema: JSON.stringify({ type: 'object', properties: { code: { type: 'string', pattern } }, patternProperties: { '^x-(a+)+$': { type: 'string' } } }),
    references: [],
  });

  it('match in linear time: a backtracking pattern on a hostile value answers at once (a hang guard, not a timer)', () => {
    const codec = createCodec(patterned('^(a+)+$'));
    // A backtracking engine takes about 2^40 steps here.
    const hostile = `${'a'.repeat(40)}!`;
    expect(codec.validate({ code: hostile })[0]?.path).toBe('code');
    expect(codec.validate({ code: 'aaaa' })).toEqual([]);
    expect(codec.validate({ [`x-${'a'.repeat(40)}!`]: 1 })).toEqual([]);
    expect(codec.validate({ [`x-aaa`]: 1 })[0]?.path).toBe('x-aaa');
  });

  it('that RE2 cannot bound (lookaround, backreferences) make the schema invalid rather than unbounded', () => {
    expect(() => createCodec(patterned('^(?!admin).*$'))).toThrow();
    expect(() => createCodec(patterned('^(a)\\1$'))).toThrow();
  });
});

describe('Protobuf message indexes', () => {
  it.each([
    [[0], [0x00]],
    [[1], [0x02, 0x02]],
    [
      [0, 2],
      [0x04, 0x00, 0x04],
    ],
    [[70], [0x02, 0x8c, 0x01]],
    [
      [0, 1, 2],
      [0x06, 0x00, 0x02, 0x04],
    ],
  ])('%j is written as %j (zigzag varints, [0] as a single 0)', (indexes, bytes) => {
    const encoded = encodeMessageIndexes(indexes);
    expect([...encoded]).toEqual(bytes);
    expect(decodeMessageIndexes(Buffer.concat([encoded, Buffer.from([0x0a])]))).toEqual({ indexes, offset: bytes.length });
  });

  it('writes the first message with [0] and reads any message of the file by its indexes', () => {
    const codec = createCodec(proto);
    const payload = codec.encode({ id: 'o-1', total: { units: 5, currency: 'EUR' }, lines: [{ sku: 'A', qty: 2 }] });
    expect(payload[0]).toBe(0);
    expect(codec.decode(payload)).toEqual({ id: 'o-1', total: { units: 5, currency: 'EUR' }, lines: [{ sku: 'A', qty: 2 }] });
    // Refund is the file's second top-level message: indexes [1]; its body is field 1 = "r-9".
    const refund = Buffer.concat([encodeMessageIndexes([1]), Buffer.from([0x0a, 0x03, ...Buffer.from('r-9')])]);
    expect(codec.decode(refund)).toEqual({ id: 'r-9' });
    // Order.Line is nested: indexes [0, 0].
    const line = Buffer.concat([encodeMessageIndexes([0, 0]), Buffer.from([0x0a, 0x01, 0x42, 0x10, 0x03])]);
    expect(codec.decode(line)).toEqual({ sku: 'B', qty: 3 });
    expect(() => codec.decode(Buffer.concat([encodeMessageIndexes([5]), Buffer.from([0x0a, 0x00])]))).toThrow(/names no message/);
    // Without a list (how @kafkajs/confluent-schema-registry frames Protobuf): the first message.
    expect(codec.decode(Buffer.from([0x0a, 0x01, 0x78]))).toMatchObject({ id: 'x' });
  });

  it('checks oneofs, repeated fields and enum names', () => {
    const codec = createCodec({
      schemaType: 'PROTOBUF',
      schema: 'syntax = "proto3";\nmessage P { oneof method { string card = 1; string iban = 2; } repeated int32 n = 3; Kind kind = 4; enum Kind { A = 0; B = 1; } }',
      references: [],
    });
    expect(codec.validate({ card: 'x', iban: 'y', n: [1, 'two'], kind: 'C' })).toEqual([
      { path: 'n[1]', message: 'expected int32, got "two"' },
      { path: 'kind', message: 'expected one of "A", "B", got "C"' },
      { path: 'method', message: 'at most one of oneof method may be set, got card, iban' },
    ]);
  });
});

describe('schema files', () => {
  it.each([
    ['schemas/OrderPlaced.avsc', 'AVRO'],
    ['schemas/Refund.json', 'JSON'],
    ['schemas/payment.PROTO', 'PROTOBUF'],
    ['schemas/notes.txt', undefined],
  ])('%s is %s', (path, type) => {
    expect(schemaTypeOfFile(path)).toBe(type);
  });
});
