import protobuf from 'protobufjs';

/**
 * JSON Schema (2020-12) of what the ingress accepts for a Protobuf message, in
 * Sluice's JSON mapping (core/formats/protobuf.ts): fields by their declared
 * names, all optional (proto3 has defaults), enums by name, 64-bit integers as
 * integers or decimal strings, bytes as base64, repeated fields as arrays,
 * maps as objects. A message met again inside itself is left open.
 */

type Json = Record<string, unknown>;

const SCALARS: Record<string, Json> = {
  double: { type: 'number' },
  float: { type: 'number' },
  int32: { type: 'integer', format: 'int32' },
  sint32: { type: 'integer', format: 'int32' },
  sfixed32: { type: 'integer', format: 'int32' },
  uint32: { type: 'integer', minimum: 0 },
  fixed32: { type: 'integer', minimum: 0 },
  int64: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?\\d+$' }], description: '64-bit integer' },
  sint64: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?\\d+$' }], description: '64-bit integer' },
  sfixed64: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?\\d+$' }], description: '64-bit integer' },
  uint64: {
    anyOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: '^\\d+$' },
    ],
    description: 'unsigned 64-bit integer',
  },
  fixed64: {
    anyOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: '^\\d+$' },
    ],
    description: 'unsigned 64-bit integer',
  },
  bool: { type: 'boolean' },
  string: { type: 'string' },
  bytes: { type: 'string', contentEncoding: 'base64' },
};

function fieldSchema(field: protobuf.Field, seen: ReadonlySet<string>): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageJsonSchema(resolved, seen);
  if (resolved instanceof protobuf.Enum) return { type: 'string', enum: Object.keys(resolved.values) };
  return SCALARS[field.type] ?? {};
}

export function messageJsonSchema(type: protobuf.Type, seen: ReadonlySet<string> = new Set()): Json {
  if (seen.has(type.fullName)) return { type: 'object', description: `${type.name} (recursive)` };
  const inside = new Set([...seen, type.fullName]);
  const properties: Json = {};
  for (const field of type.fieldsArray) {
    const single = fieldSchema(field, inside);
    if (field instanceof protobuf.MapField) properties[field.name] = { type: 'object', additionalProperties: single };
    else properties[field.name] = field.repeated ? { type: 'array', items: single } : single;
  }
  const required = type.fieldsArray.filter((f) => f.required).map((f) => f.name);
  return { type: 'object', title: type.name, properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false };
}
