import type { Schema } from 'avsc';
import { createResolvingDecoder, type AvroTypes, type Decoder } from './formats/avro-types.ts';
import { RegistryError, RegistryUnavailableError, registryStatus } from './errors.ts';
import { loadCodec, type AnyCodec } from './formats/load.ts';
import { isSchemaType, type ResolvedReference, type ResolvedSchema, type SchemaReference, type SchemaType } from './formats/types.ts';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export interface RegisteredSchema {
  subject: string;
  id: number;
  version: number;
  schema: string;
  schemaType?: SchemaType;
  references?: SchemaReference[];
  metadata?: object;
  ruleSet?: object;
}

/** A schema as the registry answers for an id or a subject version. */
export interface SchemaAnswer {
  schema: string;
  schemaType?: string;
  references?: SchemaReference[];
}

export interface RegisterOptions {
  schemaType?: SchemaType;
  references?: readonly SchemaReference[];
  /** Confluent's data-contract fields of the version, sent as given (rules/ knows their shape; core does not). */
  metadata?: object;
  ruleSet?: object;
}

function typeOf(answer: SchemaAnswer, what: string): SchemaType {
  const type = answer.schemaType ?? 'AVRO';
  if (!isSchemaType(type)) throw RegistryError.invalidSchema(`${what} has schemaType ${type}, which Sluice cannot read`);
  return type;
}

/**
 * A client for any Confluent-compatible schema registry (Sluice's or Confluent's).
 * Schemas by id never change, so they are cached for the life of the process;
 * concurrent look-ups of one id share a single request.
 */
export class RegistryClient {
  /** The registry's URL, without any credentials. */
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #resolved = new Map<number, Promise<ResolvedSchema>>();
  readonly #codecs = new Map<number, Promise<AnyCodec>>();
  readonly #decoders = new Map<string, Decoder>();

  /**
   * Credentials may ride in the URL (`https://name:password@host:8081`, as
   * Confluent's basic.auth.credentials.source=URL): they are sent as basic auth
   * and kept out of `url`, which appears in logs and errors.
   */
  constructor(url: string, options: { timeoutMs?: number } = {}) {
    const parsed = new URL(url);
    const credentials = parsed.username === '' ? undefined : `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
    parsed.username = '';
    parsed.password = '';
    this.url = parsed.toString().replace(/\/$/, '');
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#headers = credentials === undefined ? { accept: CONTENT_TYPE } : { accept: CONTENT_TYPE, authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: { status: number; statusText: string; text: string };
    try {
      response = await this.#send(method, path, body);
    } catch (error) {
      throw new RegistryUnavailableError(this.url, error);
    }
    const text = response.text;
    if (response.status < 200 || response.status > 299) {
      let code = response.status;
      let message = text || response.statusText;
      try {
        const parsed = JSON.parse(text) as { error_code?: number; message?: string };
        // A body's error_code is kept when it agrees with the status (a proxy's own body may not).
        if (typeof parsed.error_code === 'number' && registryStatus(parsed.error_code) === response.status) code = parsed.error_code;
        message = parsed.message ?? message;
      } catch {
        // A non-JSON error body (e.g. from a proxy) is reported as it is.
      }
      throw new RegistryError(code, `${method} ${path}: ${message}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /**
   * One request over node:http(s), not fetch: fetch's first call loads Node's bundled undici, and an ESM import of
   * node:http does too (getBuiltinModule does not): together more CPU than the rest of a short `sluice tail` after
   * the Kafka client. Rejects when no whole answer came (refused, reset, timed out).
   */
  #send(method: string, path: string, body: unknown): Promise<{ status: number; statusText: string; text: string }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = payload === undefined ? this.#headers : { ...this.#headers, 'content-type': CONTENT_TYPE, 'content-length': String(payload.length) };
    const url = `${this.url}${path}`;
    const http = url.startsWith('https:') ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
    return new Promise((resolve, reject) => {
      const request = http.request(url, { method, headers, signal: AbortSignal.timeout(this.#timeoutMs) }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
        // Cut short (the connection closed or the timeout fired mid-body): 'end' never comes.
        response.on('close', () => {
          if (!response.complete) reject(new Error('the registry closed the connection before the end of its answer'));
        });
      });
      request.on('error', reject);
      request.end(payload);
    });
  }

  /** Registers (or finds) `schema` under `subject` and returns its global id. */
  async register(subject: string, schema: Schema | string, options: RegisterOptions = {}): Promise<number> {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const body = {
      schema: text,
      ...(options.schemaType !== undefined && options.schemaType !== 'AVRO' ? { schemaType: options.schemaType } : {}),
      ...(options.references !== undefined && options.references.length > 0 ? { references: options.references } : {}),
      ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      ...(options.ruleSet === undefined ? {} : { ruleSet: options.ruleSet }),
    };
    const { id } = await this.request<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, body);
    return id;
  }

  async latest(subject: string): Promise<RegisteredSchema> {
    return this.request<RegisteredSchema>('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`);
  }

  /** A failed look-up is not cached: the registry may be back on the next try. */
  #once<T>(cache: Map<number, Promise<T>>, id: number, load: () => Promise<T>): Promise<T> {
    let pending = cache.get(id);
    if (!pending) {
      pending = load();
      pending.catch(() => cache.delete(id));
      cache.set(id, pending);
    }
    return pending;
  }

  /** Schema `id` with the texts of everything it references (dependencies first), fetched once. */
  resolvedById(id: number): Promise<ResolvedSchema> {
    return this.#once(this.#resolved, id, async () => {
      const answer = await this.request<SchemaAnswer>('GET', `/schemas/ids/${id}`);
      return { schemaType: typeOf(answer, `schema ${id}`), schema: answer.schema, references: await this.#resolveReferences(answer.references ?? []) };
    });
  }

  async #resolveReferences(references: readonly SchemaReference[]): Promise<ResolvedReference[]> {
    const out: ResolvedReference[] = [];
    const done = new Set<string>();
    const visit = async (ref: SchemaReference, depth: number): Promise<void> => {
      const key = `${ref.subject}/${ref.version}`;
      if (done.has(key)) return;
      if (depth > 32) throw RegistryError.invalidSchema(`schema references nest deeper than 32 levels at ${key}`);
      const answer = await this.request<SchemaAnswer>('GET', `/subjects/${encodeURIComponent(ref.subject)}/versions/${ref.version}`);
      for (const inner of answer.references ?? []) await visit(inner, depth + 1);
      done.add(key);
      out.push({ name: ref.name, schema: answer.schema });
    };
    for (const ref of references) await visit(ref, 0);
    return out;
  }

  /** A subject's version with the texts of everything it references. */
  async resolvedSubjectVersion(subject: string, version: number): Promise<ResolvedSchema> {
    const answer = await this.request<SchemaAnswer>('GET', `/subjects/${encodeURIComponent(subject)}/versions/${version}`);
    return { schemaType: typeOf(answer, `${subject} version ${version}`), schema: answer.schema, references: await this.#resolveReferences(answer.references ?? []) };
  }

  /** The codec of schema `id`, whatever its format, built once. */
  codecById(id: number): Promise<AnyCodec> {
    return this.#once(this.#codecs, id, async () => loadCodec(await this.resolvedById(id)));
  }

  /** The Avro types of schema `id`; a schema of another format is refused. */
  async typesById(id: number): Promise<AvroTypes> {
    const codec = await this.codecById(id);
    if (codec.schemaType !== 'AVRO') throw RegistryError.invalidSchema(`schema ${id} is ${codec.schemaType}, not AVRO`);
    return codec.types;
  }

  /**
   * A decoder for records written with schema `id`. Avro records are resolved
   * to `reader` when given (the writer's own schema otherwise); JSON Schema and
   * Protobuf records are read with their writer's schema.
   */
  async decoder(id: number, reader?: AvroTypes, readerKey = ''): Promise<Decoder> {
    const key = `${id}/${readerKey}`;
    const cached = this.#decoders.get(key);
    if (cached) return cached;
    const codec = await this.codecById(id);
    const decoder = codec.schemaType === 'AVRO' ? createResolvingDecoder(codec.types, reader ?? codec.types) : codec;
    this.#decoders.set(key, decoder);
    return decoder;
  }
}
