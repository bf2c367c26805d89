import { createResolvingDecoder, createTypes, encodeAvro, encodeAvroFramed, validateAvro, type AvroTypes } from './avro-types.ts';
import type { Codec, ResolvedSchema } from './types.ts';

/** An Avro codec: core/formats/avro-types.ts's exact-long types behind the format-neutral interface. */
export interface AvroCodec extends Codec {
  readonly schemaType: 'AVRO';
  readonly types: AvroTypes;
}

export function avroCodecFromTypes(types: AvroTypes): AvroCodec {
  const decoder = createResolvingDecoder(types);
  return {
    schemaType: 'AVRO',
    types,
    validate: (value) => validateAvro(types, value),
    encode: (value) => encodeAvro(types, value),
    encodeFramed: (schemaId, value) => encodeAvroFramed(types, schemaId, value),
    decode: (payload) => decoder.decode(payload),
  };
}

export function avroCodec(resolved: ResolvedSchema): AvroCodec {
  return avroCodecFromTypes(
    createTypes(
      resolved.schema,
      resolved.references.map((r) => r.schema),
    ),
  );
}
