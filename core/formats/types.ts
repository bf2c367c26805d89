import type { FieldViolation } from '../errors.ts';

/** The schema formats a Confluent-compatible registry holds. */
export const SCHEMA_TYPES = ['AVRO', 'JSON', 'PROTOBUF'] as const;
export type SchemaType = (typeof SCHEMA_TYPES)[number];

export function isSchemaType(value: unknown): value is SchemaType {
  return typeof value === 'string' && (SCHEMA_TYPES as readonly string[]).includes(value);
}

/** A reference as the registry API writes it: `name` is how the schema refers to it (Avro full name, JSON `$ref` URL, Protobuf import path). */
export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

/** A referenced schema's text, found by following a reference (and its own references). */
export interface ResolvedReference {
  name: string;
  schema: string;
}

/**
 * A schema with everything needed to read it: its type, its text and the
 * texts of every schema it references, directly or not, dependencies first.
 */
export interface ResolvedSchema {
  schemaType: SchemaType;
  schema: string;
  references: readonly ResolvedReference[];
}

/**
 * One schema's data path, whatever its format. `encode` and `decode` work on
 * the bytes after the 5-byte Confluent header (for Protobuf these start with
 * the message-index list), so `frame`/`unframe` stay format-neutral.
 */
export interface Codec {
  readonly schemaType: SchemaType;
  /** Every way `value` breaks the schema, each naming its field path; empty when valid. */
  validate(value: unknown): FieldViolation[];
  /** Encodes a value `validate` accepted. */
  encode(value: unknown): Buffer;
  /** `encode` in the Confluent wire format under `schemaId`, when the codec can write both in one Buffer (see core/wire-format.ts encodeFramed). */
  encodeFramed?(schemaId: number, value: unknown): Buffer;
  decode(payload: Buffer): unknown;
}
