import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../../core/errors.ts';
import type { SchemaReference } from '../../core/formats/types.ts';
import { parseVersion } from '../commands.ts';
import { protoToDescriptor } from '../../core/formats/proto-descriptor.ts';
import { resolveReferences, type SubjectReadable } from '../schemas.ts';
import { contractOf, type Contract, type RegistryState, type VersionEntry } from '../state.ts';
import type { RegistryStore } from '../store.ts';
import { CONTENT_TYPE } from './body.ts';

/** What every route plugin of the registry is given. */
export interface RegistryRouteOptions {
  store: RegistryStore;
  /** The subjects `request`'s caller may read (see buildRegistryApp). */
  readable(request: FastifyRequest): SubjectReadable;
}

export interface SubjectParams {
  subject: string;
}
export interface VersionParams extends SubjectParams {
  version: string;
}
export interface IdParams {
  id: string;
}

export const flag = (query: unknown, name: string): boolean => (query as Record<string, string | undefined> | undefined)?.[name] === 'true';

/** `schemaType` and `references` appear only when not AVRO / not empty, as Confluent answers. */
export function typeAndReferences(entry: { schemaType: string; references: SchemaReference[] }): { schemaType?: string; references?: SchemaReference[] } {
  return {
    ...(entry.schemaType !== 'AVRO' ? { schemaType: entry.schemaType } : {}),
    ...(entry.references.length > 0 ? { references: entry.references } : {}),
  };
}

export function versionBody(entry: VersionEntry): { subject: string; version: number; id: number; schemaType?: string; references?: SchemaReference[]; schema: string } & Contract {
  return { subject: entry.subject, version: entry.version, id: entry.id, ...typeAndReferences(entry), ...contractOf(entry), schema: entry.schema };
}

/** A subject's own setting; else, asked with defaultToGlobal=true, the global one; else Confluent's 404. */
export function subjectLevel<T>(own: T | undefined, global: T, query: unknown, notConfigured: () => RegistryError): T {
  if (own !== undefined) return own;
  if (flag(query, 'defaultToGlobal')) return global;
  throw notConfigured();
}

/**
 * A stored schema's text in the `format` a read asks for, as Confluent's `formattedString`:
 * `serialized` gives a Protobuf schema as the base64 of its FileDescriptorProto; every other
 * format, and every format of Avro and JSON Schema, the text as stored (Confluent refuses no
 * value, "for forward compatibility of formats").
 */
export function formatted(state: RegistryState, entry: { schema: string; schemaType: string; references: readonly SchemaReference[] }, query: unknown): string {
  const format = (query as Record<string, unknown> | undefined)?.format;
  if (format !== 'serialized' || entry.schemaType !== 'PROTOBUF') return entry.schema;
  const bytes = protoToDescriptor({ schemaType: 'PROTOBUF', schema: entry.schema, references: resolveReferences(state, entry.references) });
  return Buffer.from(bytes).toString('base64');
}

/** A schema's text as the whole answer (the `/schema` routes). */
export const raw = (reply: FastifyReply, text: string): FastifyReply => reply.type(CONTENT_TYPE).send(text);

function parseId(raw: string): number {
  const id = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw RegistryError.schemaNotFound(`Schema ${raw} not found`);
  return id;
}

/** Look-ups the read routes share, each answering Confluent's 404s. */
export class Lookup {
  readonly #store: RegistryStore;

  constructor(store: RegistryStore) {
    this.#store = store;
  }

  get state(): RegistryState {
    return this.#store.state;
  }

  /**
   * Answers a read; a miss first catches up with the topic once, so a schema
   * just registered through another instance is found rather than reported missing.
   */
  async read<T>(answer: () => T): Promise<T> {
    try {
      return answer();
    } catch (error) {
      if (!(error instanceof RegistryError) || error.statusCode !== 404) throw error;
      await this.#store.catchUp();
      return answer();
    }
  }

  schemaVersion(subject: string, rawVersion: string, includeDeleted: boolean): VersionEntry {
    const spec = parseVersion(rawVersion);
    if (!this.state.hasSubject(subject, includeDeleted)) throw RegistryError.subjectNotFound(subject);
    const entry = spec === 'latest' ? this.state.latest(subject, includeDeleted) : this.state.version(subject, spec);
    if (!entry || (entry.deleted && !includeDeleted)) throw RegistryError.versionNotFound(subject, rawVersion);
    return entry;
  }

  /** The schema of an id, if any version (soft-deleted ones too, which id look-ups still find) of a subject the caller may read uses it. */
  storedSchema(rawId: string, canRead: SubjectReadable): { id: number; schema: string; schemaType: string; references: SchemaReference[] } & Contract {
    const id = parseId(rawId);
    const stored = this.state.schemaById(id);
    if (!stored || !this.state.usesOfId(id, true).some((use) => canRead(use.subject))) throw RegistryError.schemaNotFound(`Schema ${id} not found`);
    return stored;
  }
}
