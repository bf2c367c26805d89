import type { Schema } from 'avsc';
import { valueCodec, type ValueSchema } from '../topology/model.ts';
import { messageJsonSchema } from './protobuf-json-schema.ts';

/**
 * JSON Schema (2020-12, as OpenAPI 3.1 uses) of what the ingress accepts for an
 * Avro schema: JSON as posted, so longs may be integers beyond 2^53,
 * timestamp-millis is epoch milliseconds or an ISO-8601 date-time, and a field
 * with a default may be left out.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const PRIMITIVE: Record<string, Json> = {
  null: { type: 'null' },
  boolean: { type: 'boolean' },
  int: { type: 'integer', format: 'int32' },
  long: { type: 'integer', format: 'int64' },
  float: { type: 'number', format: 'float' },
  double: { type: 'number', format: 'double' },
  bytes: { type: 'string', description: 'bytes as a string of code points 0-255 (Avro JSON encoding)' },
  string: { type: 'string' },
};

const TIMESTAMP: Json = {
  anyOf: [
    { type: 'integer', description: 'epoch milliseconds' },
    { type: 'string', format: 'date-time' },
  ],
};

export function avroToJsonSchema(schema: Schema): Json {
  return convert(schema, new Map());
}

function convert(schema: unknown, named: Map<string, Schema>): Json {
  if (typeof schema === 'string') {
    const primitive = PRIMITIVE[schema];
    if (primitive) return { ...primitive };
    const declared = named.get(schema) ?? named.get(schema.split('.').pop() ?? schema);
    // A recursive reference: the type is being described further up.
    return declared === undefined ? {} : { title: schema.split('.').pop() };
  }
  if (Array.isArray(schema)) return { anyOf: schema.map((branch) => convert(branch, named)) };
  if (!isObject(schema)) return {};
  if (schema.logicalType === 'timestamp-millis') return { ...TIMESTAMP };
  const doc = typeof schema.doc === 'string' ? { description: schema.doc } : {};
  switch (schema.type) {
    case 'record':
    case 'error': {
      const name = String(schema.name);
      named.set(name, schema as Schema);
      named.set(name.split('.').pop() ?? name, schema as Schema);
      const fields = (Array.isArray(schema.fields) ? schema.fields : []) as Json[];
      const properties: Record<string, Json> = {};
      for (const field of fields) {
        const converted = convert(field.type, named);
        properties[String(field.name)] = {
          ...converted,
          ...(typeof field.doc === 'string' ? { description: field.doc } : {}),
          ...('default' in field ? { default: field.default } : {}),
        };
      }
      const required = fields.filter((f) => !('default' in f)).map((f) => String(f.name));
      return { type: 'object', title: name.split('.').pop(), ...doc, properties, required };
    }
    case 'enum': {
      const name = String(schema.name);
      named.set(name, schema as Schema);
      return { type: 'string', title: name.split('.').pop(), ...doc, enum: schema.symbols };
    }
    case 'fixed':
      return { type: 'string', ...doc, minLength: schema.size, maxLength: schema.size };
    case 'array':
      return { type: 'array', ...doc, items: convert(schema.items, named) };
    case 'map':
      return { type: 'object', ...doc, additionalProperties: convert(schema.values, named) };
    default:
      return { ...convert(schema.type, named), ...doc };
  }
}

/** The JSON Schema of what the ingress accepts for a topic's value, whatever the schema's format. */
export function valueJsonSchema(value: ValueSchema): Json {
  const codec = valueCodec(value);
  switch (codec.schemaType) {
    case 'AVRO':
      return avroToJsonSchema(value.schema);
    case 'JSON': {
      // The document itself; its dialect keyword stays out, as OpenAPI 3.1 sets the dialect.
      const { $schema: _dialect, ...rest } = (typeof codec.root === 'object' ? codec.root : {}) as Json;
      return rest;
    }
    case 'PROTOBUF': {
      const first = codec.file.messages[0];
      return first ? messageJsonSchema(first) : {};
    }
  }
}
