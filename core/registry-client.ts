import type { Schema } from 'avsc';
import { createResolvingDecoder, createTypes, type AvroTypes, type Decoder } from './avro.ts';
import { RegistryError, RegistryUnavailableError } from './errors.ts';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export interface RegisteredSchema {
  subject: string;
  id: number;
  version: number;
  schema: string;
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
  readonly #byId = new Map<number, Promise<AvroTypes>>();
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
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: body === undefined ? this.#headers : { ...this.#headers, 'content-type': CONTENT_TYPE },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new RegistryUnavailableError(this.url, error);
    }
    const text = await response.text();
    if (!response.ok) {
      let code = response.status;
      let message = text || response.statusText;
      try {
        const parsed = JSON.parse(text) as { error_code?: number; message?: string };
        code = parsed.error_code ?? code;
        message = parsed.message ?? message;
      } catch {
        // A non-JSON error body (e.g. from a proxy) is reported as it is.
      }
      throw new RegistryError(response.status, code, `${method} ${path}: ${message}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Registers (or finds) `schema` under `subject` and returns its global id. */
  async register(subject: string, schema: Schema | string): Promise<number> {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    const { id } = await this.request<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema: text });
    return id;
  }

  async latest(subject: string): Promise<RegisteredSchema> {
    return this.request<RegisteredSchema>('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`);
  }

  /** The Avro types of schema `id`, fetched once. */
  typesById(id: number): Promise<AvroTypes> {
    let pending = this.#byId.get(id);
    if (!pending) {
      pending = this.request<{ schema: string; schemaType?: string }>('GET', `/schemas/ids/${id}`).then(({ schema, schemaType }) => {
        if (schemaType !== undefined && schemaType !== 'AVRO') {
          throw new RegistryError(422, 42201, `schema ${id} is ${schemaType}; Sluice reads Avro only`);
        }
        return createTypes(schema);
      });
      // A failed look-up is not cached: the registry may be back on the next try.
      pending.catch(() => this.#byId.delete(id));
      this.#byId.set(id, pending);
    }
    return pending;
  }

  /** A decoder from writer schema `id` to `reader` (the writer's own schema when omitted). */
  async decoder(id: number, reader?: AvroTypes, readerKey = ''): Promise<Decoder> {
    const key = `${id}/${readerKey}`;
    const cached = this.#decoders.get(key);
    if (cached) return cached;
    const writer = await this.typesById(id);
    const decoder = createResolvingDecoder(writer, reader ?? writer);
    this.#decoders.set(key, decoder);
    return decoder;
  }
}
