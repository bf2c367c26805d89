import { DecodeError } from './errors.ts';

/**
 * The Confluent wire format: magic byte 0, the schema id as a 4-byte big-endian
 * integer, then the body: Avro binary, UTF-8 JSON (JSON Schema), or the
 * message-index list and the Protobuf bytes (see core/formats/protobuf.ts).
 * Any Confluent serializer reads and writes it.
 */
export const MAGIC_BYTE = 0;
export const HEADER_SIZE = 5;

export function frame(schemaId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  out[0] = MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  payload.copy(out, HEADER_SIZE);
  return out;
}

/** `value` encoded by `codec` and framed under `schemaId`: in one pass when the codec can (Avro), else encoded, then framed. */
export function encodeFramed(codec: { encode(value: unknown): Buffer; encodeFramed?(schemaId: number, value: unknown): Buffer }, schemaId: number, value: unknown): Buffer {
  return codec.encodeFramed ? codec.encodeFramed(schemaId, value) : frame(schemaId, codec.encode(value));
}

export interface Framed {
  schemaId: number;
  payload: Buffer;
}

export function unframe(message: Buffer | null | undefined): Framed {
  if (!message || message.length === 0) throw new DecodeError('record has no value (null or empty)');
  if (message.length < HEADER_SIZE) throw new DecodeError(`record is ${message.length} bytes, shorter than the 5-byte Confluent header`);
  if (message[0] !== MAGIC_BYTE) {
    throw new DecodeError(`record does not start with the Confluent magic byte 0 (found 0x${message[0]!.toString(16).padStart(2, '0')})`);
  }
  return { schemaId: message.readUInt32BE(1), payload: message.subarray(HEADER_SIZE) };
}
