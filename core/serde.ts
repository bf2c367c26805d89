import type { AvroTypes } from './formats/avro-types.ts';
import { DecodeError, SluiceError, ValidationError } from './errors.ts';
import { avroCodecFromTypes, type Codec } from './formats/index.ts';
import type { RegistryClient } from './registry-client.ts';
import { encodeFramed, unframe } from './wire-format.ts';

/** Encodes events of one registered schema (of any format) into the Confluent wire format. */
export interface EventEncoder {
  readonly subject: string;
  readonly schemaId: number;
  readonly codec: Codec;
  /** Validates and frames `value`; throws ValidationError naming each bad field. */
  encode(value: unknown): Buffer;
}

export function createCodecEncoder(subject: string, schemaId: number, codec: Codec): EventEncoder {
  return {
    subject,
    schemaId,
    codec,
    encode(value) {
      const violations = codec.validate(value);
      if (violations.length > 0) throw new ValidationError(violations);
      return encodeFramed(codec, schemaId, value);
    },
  };
}

/** An encoder for an Avro schema's types. */
export function createEncoder(subject: string, schemaId: number, types: AvroTypes): EventEncoder & { readonly types: AvroTypes } {
  return { ...createCodecEncoder(subject, schemaId, avroCodecFromTypes(types)), types };
}

export interface DecodedValue {
  schemaId: number;
  value: unknown;
}

/**
 * Reads Confluent-framed records (Avro, JSON Schema or Protobuf) by the schema
 * id in each record, resolving an Avro writer's schema to `reader` when given. Every failure is a DecodeError that
 * says whether the bytes, the id or the schema were at fault.
 */
export async function decodeFramed(registry: RegistryClient, message: Buffer | null, reader?: { types: AvroTypes; key: string }): Promise<DecodedValue> {
  const { schemaId, payload } = unframe(message);
  let decoder;
  try {
    decoder = await registry.decoder(schemaId, reader?.types, reader?.key);
  } catch (error) {
    if (error instanceof SluiceError && error.retryable) throw error;
    throw new DecodeError(`schema id ${schemaId}: ${(error as Error).message}`, error);
  }
  try {
    return { schemaId, value: decoder.decode(payload) };
  } catch (error) {
    throw new DecodeError(`record does not match schema id ${schemaId}: ${(error as Error).message}`, error);
  }
}
