import { isUtf8 } from 'node:buffer';
import type { Decoder } from '../core/formats/avro-types.ts';
import { DecodeError, SluiceError, errorClass } from '../core/errors.ts';
import type { FetchedBatch, KafkaRecord, RecordHeaders, RecordView } from '../kafka/index.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { HEADER_SIZE, MAGIC_BYTE, unframe } from '../core/wire-format.ts';
import { displayPlan, type Convert } from './display.ts';
import { compileTranscoder, type Transcode } from './transcode.ts';

export type TailHeaders = ReadonlyArray<readonly [name: string, value: string | null]>;

/** One record as a tail shows it: decoded, or (when it cannot be) its bytes in hex and the reason. */
export interface TailRecord {
  topic: string;
  partition: number;
  offset: string;
  /** Epoch milliseconds. */
  timestamp: number;
  key: unknown;
  value: unknown;
  /** Every header in order, a repeated name once per value; values as UTF-8 text, null when the record's is null. */
  headers: TailHeaders;
  /** Whether key or value may hold Buffers (Avro bytes), which need stringifyJson. */
  binary: boolean;
  error?: { code: string; message: string };
  /** The undecodable value's bytes in hex (capped at HEX_LIMIT bytes). */
  valueHex?: string;
}

interface SchemaPlan {
  decoder: Decoder;
  convert?: Convert;
  binary: boolean;
  /** Avro binary straight to the JSON text decode + the ndjson formatter print, when the schema allows (transcode.ts). */
  transcode?: Transcode;
}

const HEX_LIMIT = 4096;

export function hex(bytes: Buffer): string {
  if (bytes.length <= HEX_LIMIT) return bytes.toString('hex');
  return `${bytes.subarray(0, HEX_LIMIT).toString('hex')}…(+${bytes.length - HEX_LIMIT} bytes)`;
}

function isFramed(bytes: Buffer | null): boolean {
  return bytes !== null && bytes.length >= HEADER_SIZE && bytes[0] === MAGIC_BYTE;
}

const NO_HEADERS: TailHeaders = Object.freeze([]) as unknown as TailHeaders;

function headerTexts(headers: RecordHeaders): TailHeaders {
  if (headers.length === 0) return NO_HEADERS;
  return headers.map(([name, value]) => [name, value === null ? null : value.toString('utf8')] as const);
}

/** Headers by name for a --where filter: a name that repeats gives its last value, as a worker's handler sees it. */
export function headerMap(headers: TailHeaders): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [name, value] of headers) out[name] = value;
  return out;
}

/**
 * Decodes records by the schema id each one carries. Schemas are fetched once
 * per id in `prepare` (per batch, before decoding), so `decode` itself is
 * synchronous: no promise per record on the hot path.
 */
export class RecordDecoder {
  readonly #registry: RegistryClient;
  readonly #plans = new Map<number, SchemaPlan | SluiceError>();

  constructor(registry: RegistryClient) {
    this.#registry = registry;
  }

  /** Fetches the schemas of any ids in `messages` not seen yet. A registry that cannot be reached is thrown; an unknown id becomes the records' reason. */
  async prepare(messages: readonly KafkaRecord[]): Promise<void> {
    const missing = new Set<number>();
    for (const m of messages) {
      for (const bytes of [m.value, m.key]) {
        if (bytes !== null && isFramed(bytes)) {
          const id = bytes.readUInt32BE(1);
          if (!this.#plans.has(id)) missing.add(id);
        }
      }
    }
    await Promise.all([...missing].map((id) => this.#load(id)));
  }

  async #load(id: number): Promise<void> {
    try {
      const [decoder, codec] = await Promise.all([this.#registry.decoder(id), this.#registry.codecById(id)]);
      // JSON Schema and Protobuf values are already plain JSON (Protobuf bytes as base64): only Avro needs a display plan.
      if (codec.schemaType !== 'AVRO') {
        this.#plans.set(id, { decoder, binary: false });
        return;
      }
      const plan = displayPlan(codec.types.schema);
      const transcode = compileTranscoder(codec.types.fast, codec.types.schema);
      this.#plans.set(id, { decoder, binary: plan.binary, ...(plan.convert ? { convert: plan.convert } : {}), ...(transcode ? { transcode } : {}) });
    } catch (error) {
      if (error instanceof SluiceError && error.retryable) throw error;
      this.#plans.set(id, new DecodeError(`schema id ${id}: ${(error as Error).message}`, error));
    }
  }

  /** prepare() for a batch read in place: the schemas of the framed keys and values of its records. */
  async prepareFetched(batch: FetchedBatch): Promise<void> {
    let missing: Set<number> | undefined;
    // Records of one batch mostly share their schemas: look each id up once in a row.
    let last = -1;
    const note = (b: Buffer, start: number, length: number) => {
      if (length < HEADER_SIZE || b[start] !== MAGIC_BYTE) return;
      const id = b.readUInt32BE(start + 1);
      if (id === last) return;
      last = id;
      if (!this.#plans.has(id)) (missing ??= new Set()).add(id);
    };
    batch.visit((r: RecordView) => {
      note(r.buffer, r.valueStart, r.valueLength);
      if (r.keyLength >= HEADER_SIZE) note(r.buffer, r.keyStart, r.keyLength);
    });
    if (missing) await Promise.all([...missing].map((id) => this.#load(id)));
  }

  /** Whether the schema `schemaId` was prepared (its plan, or why it has none). */
  prepared(schemaId: number): boolean {
    return this.#plans.has(schemaId);
  }

  /** The transcoder of values framed with `schemaId` (prepared), if its schema has one. */
  transcoder(schemaId: number): Transcode | undefined {
    const plan = this.#plans.get(schemaId);
    return plan === undefined || plan instanceof SluiceError ? undefined : plan.transcode;
  }

  /** Whether the last #decodeFramed or #decodeKey gave a value that may hold Buffers (a field per decoder, not an object per call). */
  #binary = false;

  #decodeFramed(bytes: Buffer | null): unknown {
    const { schemaId, payload } = unframe(bytes);
    const plan = this.#plans.get(schemaId);
    if (plan === undefined) throw new DecodeError(`schema id ${schemaId} was not prepared`);
    if (plan instanceof SluiceError) throw plan;
    let value: unknown;
    try {
      value = plan.decoder.decode(payload);
    } catch (error) {
      throw new DecodeError(`record does not match schema id ${schemaId}: ${(error as Error).message}`, error);
    }
    this.#binary = plan.binary;
    return plan.convert ? plan.convert(value) : value;
  }

  #decodeKey(key: Buffer | null): unknown {
    this.#binary = false;
    if (key === null) return null;
    // Sluice writes UTF-8 keys; a key starting with the magic byte is a Confluent-framed one.
    if (isFramed(key)) return this.#decodeFramed(key);
    return isUtf8(key) ? key.toString('utf8') : { hex: key.toString('hex') };
  }

  /** One object per record, built in one go (this runs once per record of a backlog). */
  decode(message: KafkaRecord): TailRecord {
    const offset = message.offset.toString();
    const timestamp = Number(message.timestamp);
    const headers = headerTexts(message.headers);
    let key: unknown = null;
    let keyBinary = false;
    let stage: 'key' | 'value' = 'key';
    try {
      key = this.#decodeKey(message.key);
      keyBinary = this.#binary;
      stage = 'value';
      const value = this.#decodeFramed(message.value);
      return { topic: message.topic, partition: message.partition, offset, timestamp, key, value, headers, binary: keyBinary || this.#binary };
    } catch (error) {
      const keyShown = stage === 'key' && message.key !== null ? { hex: message.key.toString('hex') } : key;
      return {
        topic: message.topic,
        partition: message.partition,
        offset,
        timestamp,
        key: keyShown,
        value: null,
        headers,
        binary: keyBinary,
        error: { code: errorClass(error), message: `${stage}: ${(error as Error).message}` },
        valueHex: message.value ? hex(message.value) : '',
      };
    }
  }
}
