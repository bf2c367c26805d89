import descriptor from 'protobufjs/ext/descriptor/index.js';
import { describe, expect, it } from 'vitest';
import { descriptorToProto, protoToDescriptor } from '../../core/formats/proto-descriptor.ts';
import type { ResolvedReference } from '../../core/formats/types.ts';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a decoded descriptor, read by path

const build = (schema: string, references: ResolvedReference[] = []): Obj =>
  descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(protoToDescriptor({ schemaType: 'PROTOBUF', schema, references })), {
    enums: String,
    longs: Number,
  }) as Obj;

const field = (message: Obj, name: string): Obj => (message.field as Obj[]).find((f) => f.name === name)!;

describe('protoToDescriptor (?format=serialized)', () => {
  const file = build(
    `syntax = "proto3";
package shop.v1;
import "money.proto";
option java_package = "dev.shop";
message Basket {
  map<string, Item> item_by_sku = 1;
  oneof owner { string user_id = 2; string guest_id = 3; }
  optional int32 max_items = 4;
  shared.Money total = 5;
  Item.Kind first_kind = 6;
  message Item { enum Kind { BOOK = 0; FOOD = 1; } Kind kind = 1; }
}
service Baskets { rpc Get (Basket) returns (stream Basket); }
`,
    [{ name: 'money.proto', schema: 'syntax = "proto3"; package shared; message Money { int64 cents = 1; }' }],
  );
  const basket = (file.messageType as Obj[])[0]!;

  it('names types fully with the leading dot, resolved through nested scopes and references', () => {
    expect(field(basket, 'total')).toMatchObject({ type: 'TYPE_MESSAGE', typeName: '.shared.Money' });
    expect(field(basket, 'first_kind')).toMatchObject({ type: 'TYPE_ENUM', typeName: '.shop.v1.Basket.Item.Kind' });
    expect(file.service[0].method[0]).toMatchObject({ inputType: '.shop.v1.Basket', outputType: '.shop.v1.Basket', serverStreaming: true });
  });

  it('writes a map as protoc does: a repeated <Field>Entry with map_entry', () => {
    expect(field(basket, 'item_by_sku')).toMatchObject({ label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: '.shop.v1.Basket.ItemBySkuEntry', jsonName: 'itemBySku' });
    const entry = (basket.nestedType as Obj[]).find((n) => n.name === 'ItemBySkuEntry')!;
    expect(entry.options).toEqual({ mapEntry: true });
    expect(entry.field).toEqual([
      { name: 'key', number: 1, label: 'LABEL_OPTIONAL', type: 'TYPE_STRING', jsonName: 'key' },
      { name: 'value', number: 2, label: 'LABEL_OPTIONAL', type: 'TYPE_MESSAGE', typeName: '.shop.v1.Basket.Item', jsonName: 'value' },
    ]);
  });

  it('puts proto3 optional in a synthetic oneof after the real ones', () => {
    expect(basket.oneofDecl).toEqual([{ name: 'owner' }, { name: '_max_items' }]);
    expect(field(basket, 'guest_id')).toMatchObject({ oneofIndex: 0 });
    expect(field(basket, 'guest_id').proto3Optional).toBeUndefined();
    expect(field(basket, 'max_items')).toMatchObject({ oneofIndex: 1, proto3Optional: true, jsonName: 'maxItems' });
  });

  it('keeps the file: name, package, syntax, imports, options', () => {
    expect(file).toMatchObject({ name: 'default', package: 'shop.v1', syntax: 'proto3', dependency: ['money.proto'], options: { javaPackage: 'dev.shop' } });
  });

  it('leaves syntax unset for proto2, as protoc does, and keeps required and defaults', () => {
    const proto2 = build('syntax = "proto2"; message A { required string a = 1 [default = "x"]; optional B b = 2; enum B { ONE = 1; } }');
    expect(proto2.syntax).toBeUndefined();
    expect(field(proto2.messageType[0], 'a')).toMatchObject({ label: 'LABEL_REQUIRED', defaultValue: 'x' });
    expect(field(proto2.messageType[0], 'b')).toMatchObject({ label: 'LABEL_OPTIONAL', typeName: '.A.B' });
  });

  it('round-trips through the .proto printer that reads registered descriptors', () => {
    const text = 'syntax = "proto3";\npackage p;\n\nmessage M {\n  map<string, int64> counts = 1;\n  optional string note = 2;\n}\n';
    expect(descriptorToProto(Buffer.from(protoToDescriptor({ schemaType: 'PROTOBUF', schema: text, references: [] })).toString('base64'))).toBe(text);
  });
});
