import type { Type } from 'avsc';
import { RegistryHttpError } from '../core/errors.ts';
import { checkCompatibility, COMPATIBILITY_LEVELS, isCompatibilityLevel, parseAvroSchema, type CompatibilityLevel } from './compatibility.ts';
import { configKey, deleteSubjectKey, isMode, modeKey, MODES, schemaKey, type LogRecord, type Mode, type RegistryState, type VersionEntry } from './state.ts';

/**
 * What each write operation of the API turns into: the log records to append
 * (all in one produce request, so one operation is appended whole or not at
 * all) and the answer to give once they are applied. Pure functions of the
 * state, so the store can re-plan on fresh state after a conflict.
 */
export interface Plan<T> {
  records: LogRecord[];
  result: T;
}

const MAX_VERSION = 2 ** 31 - 1;

export type VersionSpec = number | 'latest';

export function parseVersion(raw: string): VersionSpec {
  if (raw === 'latest' || raw === '-1') return 'latest';
  if (/^\d{1,10}$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= MAX_VERSION) return n;
  }
  throw RegistryHttpError.invalidVersion(raw);
}

export interface SchemaRequest {
  /** The schema as compact JSON text (whitespace dropped, key order kept). */
  schema: string;
  type: Type;
}

/** Validates a `{schema, schemaType?, references?}` body (42201 when unusable). */
export function parseSchemaRequest(body: unknown): SchemaRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw RegistryHttpError.invalidSchema('The request body must be a JSON object with a "schema" string');
  }
  const { schema, schemaType, references } = body as Record<string, unknown>;
  if (schemaType !== undefined && schemaType !== null && schemaType !== 'AVRO') {
    throw RegistryHttpError.invalidSchema(`Unsupported schemaType ${JSON.stringify(schemaType)}: this registry stores AVRO schemas only`);
  }
  if (references !== undefined && references !== null && !(Array.isArray(references) && references.length === 0)) {
    throw RegistryHttpError.invalidSchema('Schema references are not supported by this registry: inline the referenced named types into the schema instead');
  }
  if (typeof schema !== 'string' || schema.trim() === '') {
    throw RegistryHttpError.invalidSchema('Empty schema: the body needs a "schema" field holding the schema as a JSON string');
  }
  const type = parseAvroSchema(schema);
  return { schema: JSON.stringify(JSON.parse(schema)), type };
}

function requireWritable(state: RegistryState, what: string): void {
  if (state.mode === 'READONLY') {
    throw RegistryHttpError.operationNotPermitted(`Subject operations are not permitted in READONLY mode: cannot ${what}`);
  }
}

function liveTypes(versions: readonly VersionEntry[]): { version: number; type: Type }[] {
  return versions.map((v) => ({ version: v.version, type: parseAvroSchema(v.schema) }));
}

export function registerSchema(state: RegistryState, subject: string, body: unknown): Plan<{ id: number }> {
  const request = parseSchemaRequest(body);
  const existing = state.findInSubject(subject, request.schema);
  // Re-registering is a look-up, allowed even in READONLY mode, as Confluent does.
  if (existing) return { records: [], result: { id: existing.id } };
  requireWritable(state, `register a schema under '${subject}'`);
  const level = state.effectiveCompatibility(subject);
  const reasons = checkCompatibility(level, request.type, liveTypes(state.versions(subject)));
  if (reasons.length > 0) {
    throw RegistryHttpError.incompatible(`Schema being registered is incompatible with an earlier schema for subject "${subject}" (${level}), details: ${reasons.join('; ')}`);
  }
  const id = state.idOf(request.schema) ?? state.maxId + 1;
  const version = state.nextVersion(subject);
  const schema = state.schemaById(id)?.schema ?? request.schema;
  return {
    records: [{ key: schemaKey(subject, version), value: { subject, version, id, schema, deleted: false } }],
    result: { id },
  };
}

/**
 * Soft delete: one DELETE_SUBJECT record ("versions up to N are deleted"), so the
 * whole subject goes at once and a Confluent registry reading the topic agrees.
 * Permanent delete: a tombstone per version (what lets compaction drop them),
 * sent as one batch, which Kafka appends atomically to the single partition.
 */
export function deleteSubject(state: RegistryState, subject: string, permanent: boolean): Plan<number[]> {
  requireWritable(state, `delete subject '${subject}'`);
  const all = state.versions(subject, true);
  if (all.length === 0) throw RegistryHttpError.subjectNotFound(subject);
  const live = state.versions(subject);
  if (!permanent) {
    if (live.length === 0) throw RegistryHttpError.subjectSoftDeleted(subject);
    const upTo = all.at(-1)?.version ?? 0;
    return {
      records: [{ key: deleteSubjectKey(subject), value: { subject, version: upTo } }],
      result: live.map((v) => v.version),
    };
  }
  if (live.length > 0) throw RegistryHttpError.subjectNotSoftDeleted(subject);
  return {
    records: [...all.map((v): LogRecord => ({ key: schemaKey(subject, v.version), value: null })), { key: deleteSubjectKey(subject), value: null }],
    result: all.map((v) => v.version),
  };
}

export function deleteVersion(state: RegistryState, subject: string, spec: VersionSpec, permanent: boolean): Plan<number> {
  requireWritable(state, `delete a version of '${subject}'`);
  if (!state.hasSubject(subject, true)) throw RegistryHttpError.subjectNotFound(subject);
  // "latest" of a permanent delete is the latest soft-deleted one: that is the only kind it may remove.
  const entry = spec === 'latest' ? state.latest(subject, permanent) : state.version(subject, spec);
  if (!entry) throw RegistryHttpError.versionNotFound(subject, spec);
  if (!permanent) {
    if (entry.deleted) throw RegistryHttpError.versionSoftDeleted(subject, entry.version);
    return {
      records: [{ key: schemaKey(subject, entry.version), value: { ...valueOf(entry), deleted: true } }],
      result: entry.version,
    };
  }
  if (!entry.deleted) throw RegistryHttpError.versionNotSoftDeleted(subject, entry.version);
  return { records: [{ key: schemaKey(subject, entry.version), value: null }], result: entry.version };
}

function valueOf(entry: VersionEntry): { subject: string; version: number; id: number; schema: string; deleted: boolean } {
  return { subject: entry.subject, version: entry.version, id: entry.id, schema: entry.schema, deleted: entry.deleted };
}

export function parseCompatibilityLevel(body: unknown): CompatibilityLevel {
  const raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).compatibility : undefined;
  const level = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!isCompatibilityLevel(level)) throw RegistryHttpError.invalidCompatibilityLevel(raw, COMPATIBILITY_LEVELS);
  return level;
}

export function setConfig(state: RegistryState, subject: string | null, body: unknown): Plan<{ compatibility: CompatibilityLevel }> {
  const level = parseCompatibilityLevel(body);
  return { records: [{ key: configKey(subject), value: { compatibilityLevel: level } }], result: { compatibility: level } };
}

export function deleteConfig(state: RegistryState, subject: string | null): Plan<{ compatibilityLevel: CompatibilityLevel }> {
  const previous = subject === null ? state.globalCompatibility : state.subjectCompatibility(subject);
  if (previous === undefined) throw RegistryHttpError.subjectLevelCompatibilityNotConfigured(subject ?? '');
  return { records: [{ key: configKey(subject), value: null }], result: { compatibilityLevel: previous } };
}

export function parseMode(body: unknown): Mode {
  const raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).mode : undefined;
  const mode = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!isMode(mode)) throw RegistryHttpError.invalidMode(raw, MODES);
  return mode;
}

export function setMode(_state: RegistryState, body: unknown): Plan<{ mode: Mode }> {
  const mode = parseMode(body);
  return { records: [{ key: modeKey(null), value: { mode } }], result: { mode } };
}

export interface CompatibilityAnswer {
  is_compatible: boolean;
  messages?: string[];
}

/**
 * POST /compatibility: against one version when one is named; against the
 * versions the subject's level checks (all of them when transitive) for "latest"
 * or when no version is given.
 */
export function testCompatibility(state: RegistryState, subject: string, spec: VersionSpec | undefined, body: unknown, verbose: boolean): CompatibilityAnswer {
  const request = parseSchemaRequest(body);
  const live = state.versions(subject);
  if (live.length === 0) throw RegistryHttpError.subjectNotFound(subject);
  let against = live;
  if (typeof spec === 'number') {
    const entry = state.version(subject, spec);
    if (!entry || entry.deleted) throw RegistryHttpError.versionNotFound(subject, spec);
    against = [entry];
  }
  const level = state.effectiveCompatibility(subject);
  const reasons = checkCompatibility(level, request.type, liveTypes(against));
  return verbose ? { is_compatible: reasons.length === 0, messages: reasons } : { is_compatible: reasons.length === 0 };
}
