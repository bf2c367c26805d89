/**
 * Protobuf compatibility cases, each from a rule of Confluent's documentation
 * ("Schema Evolution and Compatibility" — Protobuf section — and the Protobuf
 * serdes page: field numbers, wire-compatible scalar types, removed fields,
 * messages, enums, oneofs, proto2 required fields). `old` is the registered
 * version, `new` the candidate; `backward` the documented verdict under
 * BACKWARD, `code` Confluent's difference type named in the refusal.
 */
export interface ProtobufCase {
  name: string;
  rule: string;
  old: string;
  new: string;
  backward: boolean;
  code?: string;
  path?: string;
}

const proto3 = (body: string, pkg = 'shop') => `syntax = "proto3";\npackage ${pkg};\n${body}\n`;
const proto2 = (body: string) => `syntax = "proto2";\npackage shop;\n${body}\n`;

export const PROTOBUF_CASES: ProtobufCase[] = [
  {
    name: 'adding a field',
    rule: 'New field numbers are skipped by old readers and defaulted for old data — FIELD_ADDED is compatible',
    old: proto3('message Order { string id = 1; }'),
    new: proto3('message Order { string id = 1; int64 amount = 2; }'),
    backward: true,
  },
  {
    name: 'removing a field',
    rule: 'Unknown field numbers are skipped — FIELD_REMOVED is compatible (reserve the number)',
    old: proto3('message Order { string id = 1; int64 amount = 2; }'),
    new: proto3('message Order { string id = 1; reserved 2; }'),
    backward: true,
  },
  {
    name: 'renaming a field',
    rule: 'Names are not on the wire — FIELD_NAME_CHANGED is compatible',
    old: proto3('message Order { string id = 1; }'),
    new: proto3('message Order { string order_id = 1; }'),
    backward: true,
  },
  {
    name: 'int32 to int64',
    rule: 'int32, uint32, int64, uint64 and bool share the varint encoding — FIELD_NUMERIC_LABEL_CHANGED is compatible',
    old: proto3('message Order { int32 qty = 1; }'),
    new: proto3('message Order { int64 qty = 1; }'),
    backward: true,
  },
  {
    name: 'string to bytes',
    rule: 'string and bytes are both length-delimited — FIELD_STRING_OR_BYTES_LABEL_CHANGED is compatible',
    old: proto3('message Order { string note = 1; }'),
    new: proto3('message Order { bytes note = 1; }'),
    backward: true,
  },
  {
    name: 'int32 to string',
    rule: 'Different wire types — FIELD_SCALAR_KIND_CHANGED',
    old: proto3('message Order { int32 qty = 1; }'),
    new: proto3('message Order { string qty = 1; }'),
    backward: false,
    code: 'FIELD_SCALAR_KIND_CHANGED',
    path: 'Order.qty',
  },
  {
    name: 'sint32 to int32',
    rule: 'Zigzag and plain varints decode to different numbers — FIELD_SCALAR_KIND_CHANGED',
    old: proto3('message Order { sint32 delta = 1; }'),
    new: proto3('message Order { int32 delta = 1; }'),
    backward: false,
    code: 'FIELD_SCALAR_KIND_CHANGED',
    path: 'Order.delta',
  },
  {
    name: 'scalar to message',
    rule: 'FIELD_KIND_CHANGED',
    old: proto3('message Money { int64 units = 1; }\nmessage Order { int64 total = 1; }'),
    new: proto3('message Money { int64 units = 1; }\nmessage Order { Money total = 1; }'),
    backward: false,
    code: 'FIELD_KIND_CHANGED',
    path: 'Order.total',
  },
  {
    name: 'message field to another message type',
    rule: 'FIELD_NAMED_TYPE_CHANGED',
    old: proto3('message A { int64 x = 1; }\nmessage B { int64 x = 1; }\nmessage Order { A part = 1; }'),
    new: proto3('message A { int64 x = 1; }\nmessage B { int64 x = 1; }\nmessage Order { B part = 1; }'),
    backward: false,
    code: 'FIELD_NAMED_TYPE_CHANGED',
    path: 'Order.part',
  },
  {
    name: 'removing a message',
    rule: 'MESSAGE_REMOVED',
    old: proto3('message Order { string id = 1; }\nmessage Refund { string id = 1; }'),
    new: proto3('message Order { string id = 1; }'),
    backward: false,
    code: 'MESSAGE_REMOVED',
    path: 'Refund',
  },
  {
    name: 'adding a message',
    rule: 'MESSAGE_ADDED is compatible',
    old: proto3('message Order { string id = 1; }'),
    new: proto3('message Order { string id = 1; }\nmessage Refund { string id = 1; }'),
    backward: true,
  },
  {
    name: 'changing the package',
    rule: 'Type names change with the package — PACKAGE_CHANGED',
    old: proto3('message Order { string id = 1; }', 'shop'),
    new: proto3('message Order { string id = 1; }', 'store'),
    backward: false,
    code: 'PACKAGE_CHANGED',
  },
  {
    name: 'adding an enum constant',
    rule: 'ENUM_CONST_ADDED is compatible',
    old: proto3('enum Status { NEW = 0; }\nmessage Order { Status status = 1; }'),
    new: proto3('enum Status { NEW = 0; PAID = 1; }\nmessage Order { Status status = 1; }'),
    backward: true,
  },
  {
    name: 'removing an enum constant',
    rule: 'Unknown enum numbers are kept — ENUM_CONST_REMOVED is compatible',
    old: proto3('enum Status { NEW = 0; PAID = 1; }\nmessage Order { Status status = 1; }'),
    new: proto3('enum Status { NEW = 0; }\nmessage Order { Status status = 1; }'),
    backward: true,
  },
  {
    name: 'adding a proto2 required field',
    rule: 'Old data lacks it — REQUIRED_FIELD_ADDED',
    old: proto2('message Order { required string id = 1; }'),
    new: proto2('message Order { required string id = 1; required int64 amount = 2; }'),
    backward: false,
    code: 'REQUIRED_FIELD_ADDED',
    path: 'Order.amount',
  },
  {
    name: 'removing a proto2 required field',
    rule: 'REQUIRED_FIELD_REMOVED',
    old: proto2('message Order { required string id = 1; required int64 amount = 2; }'),
    new: proto2('message Order { required string id = 1; }'),
    backward: false,
    code: 'REQUIRED_FIELD_REMOVED',
    path: 'Order.amount',
  },
  {
    name: 'moving one field into a new oneof',
    rule: 'A single field in a new oneof encodes the same — compatible',
    old: proto3('message Order { string card = 1; string id = 3; }'),
    new: proto3('message Order { oneof payment { string card = 1; } string id = 3; }'),
    backward: true,
  },
  {
    name: 'moving several fields into a new oneof',
    rule: 'Old data may set both — MULTIPLE_FIELDS_MOVED_TO_ONEOF',
    old: proto3('message Order { string card = 1; string iban = 2; }'),
    new: proto3('message Order { oneof payment { string card = 1; string iban = 2; } }'),
    backward: false,
    code: 'MULTIPLE_FIELDS_MOVED_TO_ONEOF',
    path: 'Order.payment',
  },
  {
    name: 'moving a field into an existing oneof',
    rule: 'FIELD_MOVED_TO_EXISTING_ONEOF',
    old: proto3('message Order { oneof payment { string card = 1; } string iban = 2; }'),
    new: proto3('message Order { oneof payment { string card = 1; string iban = 2; } }'),
    backward: false,
    code: 'FIELD_MOVED_TO_EXISTING_ONEOF',
    path: 'Order.iban',
  },
  {
    name: 'removing a field of a oneof',
    rule: 'ONEOF_FIELD_REMOVED',
    old: proto3('message Order { oneof payment { string card = 1; string iban = 2; } }'),
    new: proto3('message Order { oneof payment { string card = 1; } }'),
    backward: false,
    code: 'ONEOF_FIELD_REMOVED',
    path: 'Order.iban',
  },
  {
    name: 'changing a nested message field names the nested path',
    rule: 'FIELD_SCALAR_KIND_CHANGED inside a nested message',
    old: proto3('message Order { message Item { int32 qty = 1; } repeated Item items = 1; }'),
    new: proto3('message Order { message Item { double qty = 1; } repeated Item items = 1; }'),
    backward: false,
    code: 'FIELD_SCALAR_KIND_CHANGED',
    path: 'Order.Item.qty',
  },
];
