import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Schema } from 'avsc';
import { generateForTopology, generateTypes, staleFiles } from '../../contracts/codegen.ts';
import { generateJsonSchemaTypes, generateProtobufTypes } from '../../contracts/codegen-formats.ts';
import { parseProtoFile } from '../../core/formats/protobuf.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import { loadTopology } from '../../topology/load.ts';

describe('generated types', () => {
  it('schemas/generated is up to date with the .avsc files (run `npx sluice schemas codegen` when this fails)', () => {
    const files = generateForTopology(loadTopology(join(PROJECT_ROOT, 'topology/sluice.topology.yaml')));
    expect(files.map((f) => f.name).sort()).toEqual(['OrderPlaced.ts', 'OrderScored.ts']);
    expect(staleFiles(files).map((f) => f.path)).toEqual([]);
  });

  it('schemas/formats/generated is up to date with the Avro, JSON Schema and Protobuf files of topology/formats.topology.yaml', () => {
    const files = generateForTopology(loadTopology(join(PROJECT_ROOT, 'topology/formats.topology.yaml')));
    expect(files.map((f) => f.name).sort()).toEqual(['AvroPayment.ts', 'JsonPayment.ts', 'PaymentAudit.ts', 'proto_payment.ts']);
    expect(staleFiles(files).map((f) => f.path)).toEqual([]);
  });

  it('JSON Schema: required vs optional properties, enums, integers, arrays, unions and definitions', () => {
    const schema = {
      title: 'Shipment',
      type: 'object',
      required: ['id', 'parcels'],
      properties: {
        id: { type: 'string' },
        weight: { type: 'integer' },
        mode: { enum: ['air', 'sea'] },
        parcels: { type: 'array', items: { $ref: '#/definitions/Parcel' } },
        note: { type: ['string', 'null'] },
        'x-ref': { oneOf: [{ type: 'string' }, { type: 'number' }] },
      },
      definitions: { Parcel: { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] } },
    };
    const { name, text } = generateJsonSchemaTypes(schema, join(PROJECT_ROOT, 'schemas/Shipment.json'));
    expect(name).toBe('Shipment.ts');
    expect(text).toContain('export interface Parcel {\n  sku: string;\n}');
    expect(text).toContain(
      "export interface Shipment {\n  id: string;\n  weight?: number | bigint;\n  mode?: 'air' | 'sea';\n  parcels: Parcel[];\n  note?: string | null;\n  \"x-ref\"?: string | number;\n}",
    );
  });

  it('Protobuf: messages with defaults filled in, nested types, enums, 64-bit integers, maps, oneofs', () => {
    const file = parseProtoFile({
      schemaType: 'PROTOBUF',
      references: [],
      schema:
        'syntax = "proto3";\npackage shop;\nmessage Order {\n  int64 total = 1;\n  repeated Line lines = 2;\n  map<string, int32> tags = 3;\n  Status status = 4;\n  oneof pay { string card = 5; string iban = 6; }\n  Order parent = 7;\n  message Line { string sku = 1; }\n  enum Status { NEW = 0; PAID = 1; }\n}\n',
    });
    const { name, text } = generateProtobufTypes(file, join(PROJECT_ROOT, 'schemas/order.proto'));
    expect(name).toBe('order.ts');
    expect(text).toContain('export type ProtoLong = number | bigint;');
    expect(text).toContain("export type Order_Status = 'NEW' | 'PAID';");
    expect(text).toContain('export interface Order_Line {\n  sku: string;\n}');
    expect(text).toContain(
      'export interface Order {\n  total: ProtoLong;\n  lines: Order_Line[];\n  tags: Record<string, number>;\n  status: Order_Status;\n  card?: string;\n  iban?: string;\n  parent: Order | null;\n}',
    );
  });

  it('maps longs, enums, optional unions, timestamps, arrays, maps and nested records', () => {
    const schema = {
      type: 'record',
      name: 'dev.x.Thing',
      doc: 'A thing.',
      fields: [
        { name: 'count', type: 'long' },
        { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
        { name: 'note', type: ['null', 'string'], default: null, doc: 'Free text.' },
        { name: 'tags', type: { type: 'map', values: 'int' } },
        { name: 'parts', type: { type: 'array', items: { type: 'record', name: 'Part', fields: [{ name: 'kind', type: 'Kind' }] } } },
        { name: 'either', type: ['int', 'string'] },
        { name: 'raw', type: 'bytes' },
      ],
    } as Schema;
    const { name, text } = generateTypes(schema, `${PROJECT_ROOT}/schemas/Thing.avsc`);
    expect(name).toBe('Thing.ts');
    expect(text).toContain('export type AvroLong = number | bigint;');
    expect(text).toContain("export type Kind = 'A' | 'B';");
    expect(text).toContain('export interface Part {\n  kind: Kind;\n}');
    expect(text).toContain('/** A thing. */\nexport interface Thing {');
    for (const field of [
      'count: AvroLong;',
      'at: number;',
      '/** Free text. */\n  note: string | null;',
      'tags: Record<string, number>;',
      'parts: Part[];',
      'either: number | string;',
      'raw: Buffer;',
    ]) {
      expect(text).toContain(field);
    }
    expect(text).toMatch(/^\/\/ Generated by `sluice schemas codegen` from schemas\/Thing\.avsc\./);
  });
});
