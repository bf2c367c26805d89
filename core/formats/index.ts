import { ValidationError } from '../errors.ts';
import { avroCodec } from './avro.ts';
import { jsonSchemaCodec } from './json-schema.ts';
import { protobufCodec } from './protobuf.ts';
import type { AnyCodec } from './load.ts';
import type { Codec, ResolvedSchema, SchemaType } from './types.ts';

export { avroCodec, avroCodecFromTypes, type AvroCodec } from './avro.ts';
export { jsonSchemaCodec, type JsonSchemaCodec } from './json-schema.ts';
export { protobufCodec, type ProtobufCodec } from './protobuf.ts';
export * from './types.ts';
export { loadCodec, type AnyCodec } from './load.ts';

/** The codec of a schema of any of the three formats; throws when the schema (or a reference) cannot be parsed. */
export function createCodec(resolved: ResolvedSchema): AnyCodec {
  switch (resolved.schemaType) {
    case 'AVRO':
      return avroCodec(resolved);
    case 'JSON':
      return jsonSchemaCodec(resolved);
    case 'PROTOBUF':
      return protobufCodec(resolved);
  }
}

/** Validates and encodes in one step; throws ValidationError naming every bad field. */
export function encodeValidated(codec: Codec, value: unknown): Buffer {
  const violations = codec.validate(value);
  if (violations.length > 0) throw new ValidationError(violations);
  return codec.encode(value);
}

const EXTENSIONS: Record<string, SchemaType> = { '.avsc': 'AVRO', '.json': 'JSON', '.proto': 'PROTOBUF' };

/** A schema file's format from its extension: `.avsc`, `.json` (JSON Schema) or `.proto`; undefined for any other. */
export function schemaTypeOfFile(path: string): SchemaType | undefined {
  const match = /\.[^./\\]+$/.exec(path);
  return match ? EXTENSIONS[match[0].toLowerCase()] : undefined;
}

export const SCHEMA_FILE_EXTENSIONS = Object.keys(EXTENSIONS);
