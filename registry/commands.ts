import { RegistryError } from '../core/errors.ts';
import { checkCompatibility, COMPATIBILITY_LEVELS, isCompatibilityLevel, type CompatibilityLevel, type PreviousSchema } from './compatibility.ts';
import { explainSchemaIncompatibility, parseSchemaRequest, parseStored, type ParsedSchema, type SchemaRequest, type SubjectReadable } from './schemas.ts';
import { mergeMetadata, mergeRuleSets, normalizeRuleSet } from '../rules/index.ts';
import { parseContract } from './schemas.ts';
import { refuseUnknownFields } from './fields.ts';
import {
  CONFIG_CONTRACT_KEYS,
  configKey,
  contractOf,
  schemaValueOf,
  deleteSubjectKey,
  isMode,
  modeKey,
  MODES,
  schemaKey,
  type ConfigValue,
  type Contract,
  type LogRecord,
  type Mode,
  type RegistryState,
  type VersionEntry,
} from './state.ts';

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
  throw RegistryError.invalidVersion(raw);
}

/** Refuses writes to a READONLY subject (or any subject, for a global operation, when the registry is READONLY). */
function requireWritable(state: RegistryState, subject: string | null, what: string): void {
  const mode = subject === null ? state.mode : state.effectiveMode(subject);
  if (mode === 'READONLY') {
    const scope = subject !== null && state.subjectMode(subject) !== undefined ? `Subject '${subject}' is` : 'The registry is';
    throw RegistryError.operationNotPermitted(`${scope} in READONLY mode: cannot ${what}`);
  }
}

function previousSchemas(state: RegistryState, versions: readonly VersionEntry[]): PreviousSchema<ParsedSchema>[] {
  return versions.map((v) => ({ version: v.version, type: parseStored(state, v) }));
}

/** Deleting a version other live schemas reference would leave them unreadable: refused as Confluent does (42206). */
function requireUnreferenced(state: RegistryState, entries: readonly VersionEntry[]): void {
  for (const entry of entries) {
    const ids = state.referencedBy(entry.subject, entry.version);
    if (ids.length > 0) {
      throw RegistryError.referenceExists(`One or more references exist to the schema {subject=${entry.subject},version=${entry.version}}: schema id(s) ${ids.join(', ')} reference it`);
    }
  }
}

/**
 * A registration's contract, in Confluent's merge order: the config's default,
 * then the request's own (or, when it gives none, the previous version's, so
 * a client registering a bare schema keeps the subject's rules), then the
 * config's override.
 */
export function contractFor(state: RegistryState, subject: string, request: Contract): Contract {
  const previous = state.latest(subject);
  const config = state.effectiveContractConfig(subject);
  const metadata = mergeMetadata(mergeMetadata(config.defaultMetadata, request.metadata ?? previous?.metadata), config.overrideMetadata);
  const ruleSet = mergeRuleSets(mergeRuleSets(config.defaultRuleSet, request.ruleSet ?? previous?.ruleSet), config.overrideRuleSet);
  return contractOf({ metadata, ruleSet: ruleSet === undefined ? undefined : normalizeRuleSet(ruleSet) });
}

export function registerSchema(state: RegistryState, subject: string, body: unknown, canRead?: SubjectReadable, normalize = false): Plan<{ id: number }> {
  const parsedRequest = parseSchemaRequest(state, body, { subject, canRead, normalize });
  const request = { ...parsedRequest, ...contractFor(state, subject, parsedRequest) };
  const existing = state.findInSubject(subject, request.schema, request.schemaType, request.references, false, request);
  // Re-registering is a look-up, allowed even in READONLY mode, as Confluent does.
  if (existing && (request.id === undefined || request.id === existing.id)) return { records: [], result: { id: existing.id } };
  requireWritable(state, subject, `register a schema under '${subject}'`);
  const mode = state.effectiveMode(subject);
  const { id, version } = mode === 'IMPORT' ? importedIdentity(state, subject, request) : checkedIdentity(state, subject, request);
  const schema = state.schemaById(id)?.schema ?? request.schema;
  const value = {
    subject,
    version,
    id,
    schema,
    deleted: false,
    ...(request.schemaType !== 'AVRO' ? { schemaType: request.schemaType } : {}),
    ...(request.references.length > 0 ? { references: request.references } : {}),
    ...contractOf(request),
  };
  return { records: [{ key: schemaKey(subject, version), value }], result: { id } };
}

/** READWRITE: the subject's level decides, and the registry picks the id and version. */
function checkedIdentity(state: RegistryState, subject: string, request: SchemaRequest): { id: number; version: number } {
  if (request.id !== undefined) {
    throw RegistryError.operationNotPermitted(`Subject '${subject}' is not in IMPORT mode: a schema can only be registered with an explicit id in IMPORT mode`);
  }
  const level = state.effectiveCompatibility(subject);
  // compatibilityGroup: a new value of that metadata property (e.g. major_version) starts a new line of versions.
  const group = state.effectiveContractConfig(subject).compatibilityGroup;
  const groupOf = (c: Contract): string | undefined => (group === undefined ? undefined : c.metadata?.properties?.[group]);
  const compared = state.versions(subject).filter((v) => group === undefined || groupOf(v) === groupOf(request));
  const reasons = checkCompatibility(level, request.parsed, previousSchemas(state, compared), explainSchemaIncompatibility);
  if (reasons.length > 0) {
    throw RegistryError.incompatible(`Schema being registered is incompatible with an earlier schema for subject "${subject}" (${level}), details: ${reasons.join('; ')}`);
  }
  return { id: state.idOf(request.schema, request.schemaType, request.references, request) ?? state.maxId + 1, version: state.nextVersion(subject) };
}

/** IMPORT: the caller's id (and version) are kept, unchecked, as long as they do not collide with what is there. */
function importedIdentity(state: RegistryState, subject: string, request: SchemaRequest): { id: number; version: number } {
  const id = request.id;
  if (id === undefined) throw RegistryError.operationNotPermitted(`Subject '${subject}' is in IMPORT mode: a registration must give the schema's "id"`);
  const known = state.idOf(request.schema, request.schemaType, request.references, request);
  if (known !== undefined && known !== id) throw RegistryError.operationNotPermitted(`This schema is already registered with id ${known}; it cannot be imported as id ${id}`);
  if (known === undefined && state.schemaById(id)) throw RegistryError.operationNotPermitted(`Overwrite new schema with id ${id} is not permitted: the id holds another schema`);
  const version = request.version ?? state.nextVersion(subject);
  if (state.version(subject, version)) throw RegistryError.operationNotPermitted(`Version ${version} of subject '${subject}' already exists`);
  return { id, version };
}

/**
 * Soft delete: one DELETE_SUBJECT record ("versions up to N are deleted"), so the
 * whole subject goes at once and a Confluent registry reading the topic agrees.
 * Permanent delete: a tombstone per version (what lets compaction drop them),
 * sent as one batch, which Kafka appends atomically to the single partition.
 */
export function deleteSubject(state: RegistryState, subject: string, permanent: boolean): Plan<number[]> {
  requireWritable(state, subject, `delete subject '${subject}'`);
  const all = state.versions(subject, true);
  if (all.length === 0) throw RegistryError.subjectNotFound(subject);
  const live = state.versions(subject);
  requireUnreferenced(state, all);
  if (!permanent) {
    if (live.length === 0) throw RegistryError.subjectSoftDeleted(subject);
    const upTo = all.at(-1)?.version ?? 0;
    return {
      records: [{ key: deleteSubjectKey(subject), value: { subject, version: upTo } }],
      result: live.map((v) => v.version),
    };
  }
  if (live.length > 0) throw RegistryError.subjectNotSoftDeleted(subject);
  return {
    records: [...all.map((v): LogRecord => ({ key: schemaKey(subject, v.version), value: null })), { key: deleteSubjectKey(subject), value: null }],
    result: all.map((v) => v.version),
  };
}

export function deleteVersion(state: RegistryState, subject: string, spec: VersionSpec, permanent: boolean): Plan<number> {
  requireWritable(state, subject, `delete a version of '${subject}'`);
  if (!state.hasSubject(subject, true)) throw RegistryError.subjectNotFound(subject);
  // "latest" of a permanent delete is the latest soft-deleted one: that is the only kind it may remove.
  const entry = spec === 'latest' ? state.latest(subject, permanent) : state.version(subject, spec);
  if (!entry) throw RegistryError.versionNotFound(subject, spec);
  requireUnreferenced(state, [entry]);
  if (!permanent) {
    if (entry.deleted) throw RegistryError.versionSoftDeleted(subject, entry.version);
    return {
      records: [{ key: schemaKey(subject, entry.version), value: { ...schemaValueOf(entry), deleted: true } }],
      result: entry.version,
    };
  }
  if (!entry.deleted) throw RegistryError.versionNotSoftDeleted(subject, entry.version);
  return { records: [{ key: schemaKey(subject, entry.version), value: null }], result: entry.version };
}

export function parseCompatibilityLevel(body: unknown): CompatibilityLevel {
  const raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).compatibility : undefined;
  const level = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!isCompatibilityLevel(level)) throw RegistryError.invalidCompatibilityLevel(raw, COMPATIBILITY_LEVELS);
  return level;
}

/** The config fields Sluice keeps (`compatibilityLevel` is what GET answers, taken back as Confluent does). */
const CONFIG_FIELDS = new Set<string>(['compatibility', 'compatibilityLevel', ...CONFIG_CONTRACT_KEYS]);
const MODE_FIELDS = new Set(['mode']);

/**
 * PUT /config and /config/{subject}: `compatibility` and Confluent's contract
 * keys (compatibilityGroup, default/override metadata and ruleSet), merged
 * into what the scope already has; the answer echoes what was set.
 */
export function setConfig(state: RegistryState, subject: string | null, body: unknown): Plan<ConfigAnswer> {
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  refuseUnknownFields(fields, CONFIG_FIELDS);
  const given = CONFIG_CONTRACT_KEYS.some((k) => fields[k] !== undefined && fields[k] !== null);
  const level =
    fields.compatibility === undefined && fields.compatibilityLevel === undefined && given ? undefined : parseCompatibilityLevel({ compatibility: fields.compatibility ?? fields.compatibilityLevel });
  const update: ConfigValue = level === undefined ? {} : { compatibilityLevel: level };
  if (fields.compatibilityGroup !== undefined && fields.compatibilityGroup !== null) {
    if (typeof fields.compatibilityGroup !== 'string' || fields.compatibilityGroup.length > 256) throw RegistryError.invalidSchema('compatibilityGroup must be a metadata property name (a string)');
    update.compatibilityGroup = fields.compatibilityGroup;
  }
  for (const [metadataKey, ruleSetKey] of [
    ['defaultMetadata', 'defaultRuleSet'],
    ['overrideMetadata', 'overrideRuleSet'],
  ] as const) {
    const contract = parseContract({ metadata: fields[metadataKey], ruleSet: fields[ruleSetKey] });
    if (contract.metadata) update[metadataKey] = contract.metadata;
    if (contract.ruleSet) update[ruleSetKey] = contract.ruleSet;
  }
  const value: ConfigValue = { ...state.configValue(subject), ...update };
  if (value.compatibilityLevel === undefined && subject === null) value.compatibilityLevel = state.globalCompatibility;
  return { records: [{ key: configKey(subject), value }], result: configAnswer(update) };
}

/** A config as the API shows it: `compatibility` on PUT answers, `compatibilityLevel` on GET, and the contract keys set. */
export type ConfigAnswer = { compatibility?: CompatibilityLevel } & Omit<ConfigValue, 'compatibilityLevel'>;

function configAnswer(value: ConfigValue): ConfigAnswer {
  const { compatibilityLevel, ...rest } = value;
  return { ...(compatibilityLevel !== undefined ? { compatibility: compatibilityLevel } : {}), ...rest };
}

export function deleteConfig(state: RegistryState, subject: string | null): Plan<{ compatibilityLevel: CompatibilityLevel }> {
  if (subject !== null && state.configValue(subject) === undefined) throw RegistryError.subjectLevelCompatibilityNotConfigured(subject);
  const previous = (subject === null ? state.globalCompatibility : state.subjectCompatibility(subject)) ?? state.globalCompatibility;
  return { records: [{ key: configKey(subject), value: null }], result: { compatibilityLevel: previous } };
}

export function parseMode(body: unknown): Mode {
  const raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).mode : undefined;
  const mode = typeof raw === 'string' ? raw.toUpperCase() : raw;
  if (!isMode(mode)) throw RegistryError.invalidMode(raw, MODES);
  return mode;
}

/**
 * PUT /mode and PUT /mode/{subject}. IMPORT is refused where schemas already
 * exist (imported ids could collide with them) unless `force` is given, as Confluent does.
 */
export function setMode(state: RegistryState, subject: string | null, body: unknown, force = false): Plan<{ mode: Mode }> {
  refuseUnknownFields(body, MODE_FIELDS);
  const mode = parseMode(body);
  if (mode === 'IMPORT' && !force) {
    const existing = subject === null ? state.subjects().length > 0 : state.hasSubject(subject);
    if (existing) {
      throw RegistryError.operationNotPermitted(`Cannot import since found existing ${subject === null ? 'subjects' : `versions of subject '${subject}'`}: pass force=true to switch to IMPORT anyway`);
    }
  }
  return { records: [{ key: modeKey(subject), value: { mode } }], result: { mode } };
}

/** DELETE /mode/{subject}: the subject follows the global mode again; answers the mode it had. */
export function deleteMode(state: RegistryState, subject: string): Plan<{ mode: Mode }> {
  const previous = state.subjectMode(subject);
  if (previous === undefined) throw RegistryError.subjectLevelModeNotConfigured(subject);
  return { records: [{ key: modeKey(subject), value: null }], result: { mode: previous } };
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
export function testCompatibility(state: RegistryState, subject: string, spec: VersionSpec | undefined, body: unknown, verbose: boolean, canRead?: SubjectReadable): CompatibilityAnswer {
  const request = parseSchemaRequest(state, body, { subject, canRead });
  const live = state.versions(subject);
  if (live.length === 0) throw RegistryError.subjectNotFound(subject);
  let against = live;
  if (typeof spec === 'number') {
    const entry = state.version(subject, spec);
    if (!entry || entry.deleted) throw RegistryError.versionNotFound(subject, spec);
    against = [entry];
  }
  const level = state.effectiveCompatibility(subject);
  const reasons = checkCompatibility(level, request.parsed, previousSchemas(state, against), explainSchemaIncompatibility);
  return verbose ? { is_compatible: reasons.length === 0, messages: reasons } : { is_compatible: reasons.length === 0 };
}
