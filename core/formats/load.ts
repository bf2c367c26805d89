import { avroCodec } from './avro.ts';
import type { JsonSchemaCodec } from './json-schema.ts';
import type { ProtobufCodec } from './protobuf.ts';
import type { AvroCodec } from './avro.ts';
import type { ResolvedSchema } from './types.ts';

export type AnyCodec = AvroCodec | JsonSchemaCodec | ProtobufCodec;

/**
 * The codec of a schema fetched from the registry, with a JSON Schema compiled off the event loop
 * (json-schema-compiler.ts): for a schema a service fetched while it serves, which anyone allowed to register may
 * have made heavy. The JSON Schema and Protobuf codecs (ajv, protobufjs and their formats) load with the first
 * schema of their kind: a reader of Avro records (`sluice tail`, whose CPU is mostly start-up) never loads them.
 */
export async function loadCodec(resolved: ResolvedSchema): Promise<AnyCodec> {
  switch (resolved.schemaType) {
    case 'AVRO':
      return avroCodec(resolved);
    case 'JSON':
      return (await import('./json-schema-compiler.ts')).jsonSchemaCompiler.codec(resolved);
    case 'PROTOBUF':
      return (await import('./protobuf.ts')).protobufCodec(resolved);
  }
}
