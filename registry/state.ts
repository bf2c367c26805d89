import type { SchemaReference } from '../core/formats/types.ts';
import { parseJsonText } from '../core/json.ts';
import { LONG_TEXT, STEP_MEMO_LIMIT, TextMemo, textsKey } from '../core/turns.ts';
import type { Metadata, RuleSet } from '../rules/types.ts';
import { COMPATIBILITY_LEVELS, DEFAULT_COMPATIBILITY, isCompatibilityLevel, type CompatibilityLevel } from './compatibility.ts';

/**
 * The registry's state as a pure function of its log: records are applied in
 * offset order and each is accepted or rejected by rules that depend only on
 * the state built so far. Every instance replaying the same log therefore
 * reaches the same state, which is what lets several registry processes write
 * to one topic without a leader (see store.ts for the writer's side).
 *
 * Rules are chosen so that replaying the compacted log (the last record of each
 * key, tombstones eventually gone) gives the same state as replaying the whole
 * log. That rules out order-based checks such as "a new version must be the
 * subject's next one": after compaction, a version's last record (e.g. its
 * soft-delete) can come after later versions, or the versions below it may be
 * gone. So the rules are about keys and ids only:
 *  - a SCHEMA record for a new key is accepted unless its id belongs to another
 *    schema or its schema already has another id;
 *  - one for an existing key only if it is the same schema with the same id
 *    (it may soft-delete the version, never revive it);
 *  - a tombstone only removes a soft-deleted version;
 *  - a DELETE_SUBJECT record (or its tombstone) is rejected if a version above
 *    the one it names is soft-deleted only by the subject's earlier
 *    DELETE_SUBJECT records: compaction keeps only the key's last record, so
 *    accepting it would revive that version in the compacted log. A writer
 *    sends such a record only when it planned on a stale view of the subject
 *    (on a fresh one it names the subject's highest version).
 * Two writers working from the same state pick the same next version, so the
 * later record lands on an existing key and is rejected by every instance.
 * A rejected record would still break compaction (it can be the last record of
 * its key), so the writer whose record was rejected rewrites the key's accepted
 * value after it (`currentRecord`) before retrying; see store.ts.
 */

/** READONLY refuses writes; IMPORT accepts schemas with explicit ids (and versions), unchecked, to copy another registry. */
export const MODES = ['READWRITE', 'READONLY', 'IMPORT'] as const;
export type Mode = (typeof MODES)[number];
export const DEFAULT_MODE: Mode = 'READWRITE';

export function isMode(value: unknown): value is Mode {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value);
}

// Keys in Confluent's layout (field order included: compaction compares key bytes).
export type RecordKey =
  | { keytype: 'SCHEMA'; subject: string; version: number; magic: 1 }
  | { keytype: 'CONFIG'; subject: string | null; magic: 0 }
  | { keytype: 'MODE'; subject: string | null; magic: 0 }
  | { keytype: 'DELETE_SUBJECT'; subject: string; magic: 0 }
  | { keytype: 'NOOP'; magic: 0 };

/** A version's data contract, kept with it as Confluent's `_schemas` records keep it. */
export interface Contract {
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

export interface SchemaValue extends Contract {
  subject: string;
  version: number;
  id: number;
  schema: string;
  deleted: boolean;
  schemaType?: string;
  references?: SchemaReference[];
}

/** `metadata` and `ruleSet` as set on an object, only when present (as Confluent writes them). */
export function contractOf(value: Contract): Contract {
  return {
    ...(value.metadata !== undefined && value.metadata !== null ? { metadata: value.metadata } : {}),
    ...(value.ruleSet !== undefined && value.ruleSet !== null ? { ruleSet: value.ruleSet } : {}),
  };
}
/**
 * The SCHEMA record of a version as it stands, contract included: the contract is part of what a version's schema is
 * (its identity), so a record without it (a soft delete) would name another schema and be refused.
 */
export function schemaValueOf(entry: VersionEntry): SchemaValue {
  return {
    subject: entry.subject,
    version: entry.version,
    id: entry.id,
    schema: entry.schema,
    deleted: entry.deleted,
    ...(entry.schemaType !== 'AVRO' ? { schemaType: entry.schemaType } : {}),
    ...(entry.references.length > 0 ? { references: entry.references } : {}),
    ...contractOf(entry),
  };
}

/** A CONFIG record: any of Confluent's config keys (PUT /config merges into what is there). */
export interface ConfigValue {
  compatibilityLevel?: CompatibilityLevel;
  /** A metadata property (e.g. `major_version`): only versions with the same value of it are checked against each other. */
  compatibilityGroup?: string;
  defaultMetadata?: Metadata;
  overrideMetadata?: Metadata;
  defaultRuleSet?: RuleSet;
  overrideRuleSet?: RuleSet;
}

export const CONFIG_CONTRACT_KEYS = ['compatibilityGroup', 'defaultMetadata', 'overrideMetadata', 'defaultRuleSet', 'overrideRuleSet'] as const;
export interface ModeValue {
  mode: Mode;
}
/** Soft-deletes every version of `subject` up to and including `version`. */
export interface DeleteSubjectValue {
  subject: string;
  version: number;
}

export type LogRecord =
  | { key: Extract<RecordKey, { keytype: 'SCHEMA' }>; value: SchemaValue | null }
  | { key: Extract<RecordKey, { keytype: 'CONFIG' }>; value: ConfigValue | null }
  | { key: Extract<RecordKey, { keytype: 'MODE' }>; value: ModeValue | null }
  | { key: Extract<RecordKey, { keytype: 'DELETE_SUBJECT' }>; value: DeleteSubjectValue | null }
  | { key: Extract<RecordKey, { keytype: 'NOOP' }>; value: null };

export const schemaKey = (subject: string, version: number): Extract<RecordKey, { keytype: 'SCHEMA' }> => ({
  keytype: 'SCHEMA',
  subject,
  version,
  magic: 1,
});
export const configKey = (subject: string | null): Extract<RecordKey, { keytype: 'CONFIG' }> => ({ keytype: 'CONFIG', subject, magic: 0 });
export const modeKey = (subject: string | null): Extract<RecordKey, { keytype: 'MODE' }> => ({ keytype: 'MODE', subject, magic: 0 });
export const deleteSubjectKey = (subject: string): Extract<RecordKey, { keytype: 'DELETE_SUBJECT' }> => ({
  keytype: 'DELETE_SUBJECT',
  subject,
  magic: 0,
});

/** Key bytes: always built from the helpers above so equal keys are equal bytes. */
export function encodeKey(key: RecordKey): string {
  return JSON.stringify(key);
}

export function encodeValue(record: LogRecord): string | null {
  if (record.value === null) return null;
  if (record.key.keytype === 'SCHEMA') {
    const v = record.value as SchemaValue;
    return JSON.stringify({
      subject: v.subject,
      version: v.version,
      id: v.id,
      schema: v.schema,
      deleted: v.deleted,
      ...(v.schemaType !== undefined && v.schemaType !== 'AVRO' ? { schemaType: v.schemaType } : {}),
      ...(v.references !== undefined && v.references.length > 0 ? { references: v.references } : {}),
      ...contractOf(v),
    });
  }
  return JSON.stringify(record.value);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Parses a raw record; throws with the reason when it is not in the layout above. */
export function decodeRecord(rawKey: string | null, rawValue: string | null): LogRecord {
  if (rawKey === null) throw new Error('record has no key');
  const key: unknown = JSON.parse(rawKey);
  const value: unknown = rawValue === null ? null : JSON.parse(rawValue);
  if (!isObject(key)) throw new Error('key is not a JSON object');
  const subjectOrNull = key.subject === undefined || key.subject === null ? null : key.subject;
  if (subjectOrNull !== null && typeof subjectOrNull !== 'string') throw new Error('key subject is not a string');
  switch (key.keytype) {
    case 'SCHEMA': {
      if (typeof key.subject !== 'string' || !isPositiveInt(key.version)) throw new Error('SCHEMA key needs a subject and a version');
      const k = schemaKey(key.subject, key.version);
      if (value === null) return { key: k, value: null };
      if (!isObject(value) || typeof value.schema !== 'string' || !isPositiveInt(value.id)) {
        throw new Error('SCHEMA value needs a schema and a positive id');
      }
      if (value.subject !== k.subject || value.version !== k.version) throw new Error('SCHEMA value does not match its key');
      const schemaType = typeof value.schemaType === 'string' ? value.schemaType : undefined;
      const references = decodeReferences(value.references);
      if (value.metadata !== undefined && value.metadata !== null && !isObject(value.metadata)) throw new Error('SCHEMA value metadata is not an object');
      if (value.ruleSet !== undefined && value.ruleSet !== null && !isObject(value.ruleSet)) throw new Error('SCHEMA value ruleSet is not an object');
      return {
        key: k,
        value: {
          subject: k.subject,
          version: k.version,
          id: value.id,
          schema: value.schema,
          deleted: value.deleted === true,
          ...(schemaType !== undefined ? { schemaType } : {}),
          ...(references.length > 0 ? { references } : {}),
          ...contractOf(value as Contract),
        },
      };
    }
    case 'CONFIG': {
      const k = configKey(subjectOrNull);
      if (value === null) return { key: k, value: null };
      const hasContractKeys = isObject(value) && CONFIG_CONTRACT_KEYS.some((name) => value[name] !== undefined && value[name] !== null);
      if (!isObject(value) || (!isCompatibilityLevel(value.compatibilityLevel) && !(hasContractKeys && (value.compatibilityLevel === undefined || value.compatibilityLevel === null)))) {
        throw new Error(`CONFIG value needs compatibilityLevel, one of ${COMPATIBILITY_LEVELS.join(', ')}`);
      }
      const config: ConfigValue = isCompatibilityLevel(value.compatibilityLevel) ? { compatibilityLevel: value.compatibilityLevel } : {};
      if (typeof value.compatibilityGroup === 'string') config.compatibilityGroup = value.compatibilityGroup;
      for (const name of ['defaultMetadata', 'overrideMetadata'] as const) if (isObject(value[name])) config[name] = value[name] as Metadata;
      for (const name of ['defaultRuleSet', 'overrideRuleSet'] as const) if (isObject(value[name])) config[name] = value[name] as RuleSet;
      return { key: k, value: config };
    }
    case 'MODE': {
      const k = modeKey(subjectOrNull);
      if (value === null) return { key: k, value: null };
      if (!isObject(value) || !isMode(value.mode)) throw new Error(`MODE value needs mode, one of ${MODES.join(', ')}`);
      return { key: k, value: { mode: value.mode } };
    }
    case 'DELETE_SUBJECT': {
      if (typeof key.subject !== 'string') throw new Error('DELETE_SUBJECT key needs a subject');
      const k = deleteSubjectKey(key.subject);
      if (value === null) return { key: k, value: null };
      if (!isObject(value) || !isPositiveInt(value.version)) throw new Error('DELETE_SUBJECT value needs a version');
      return { key: k, value: { subject: key.subject, version: value.version } };
    }
    case 'NOOP':
      return { key: { keytype: 'NOOP', magic: 0 }, value: null };
    default:
      throw new Error(`unknown keytype ${JSON.stringify(key.keytype)}`);
  }
}

function decodeReferences(raw: unknown): SchemaReference[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new Error('SCHEMA value references is not a list');
  return raw.map((r: unknown) => {
    if (!isObject(r) || typeof r.name !== 'string' || typeof r.subject !== 'string' || !isPositiveInt(r.version)) {
      throw new Error('SCHEMA value reference needs a name, a subject and a version');
    }
    return { name: r.name, subject: r.subject, version: r.version };
  });
}

const normalized = new TextMemo<string>(STEP_MEMO_LIMIT);

/**
 * Schema identity: key order and whitespace do not make a different schema.
 * Protobuf text is not JSON: its identity is the text with comments and runs of
 * whitespace collapsed (what a reformatting editor changes).
 */
export function normalizeSchema(text: string, schemaType = 'AVRO'): string {
  // A long text's identity is asked for several times per request (look-up, registration, the record's apply): worked out once.
  return text.length >= LONG_TEXT ? normalized.get(textsKey([schemaType, text]), () => normalizeNow(text, schemaType)) : normalizeNow(text, schemaType);
}

function normalizeNow(text: string, schemaType: string): string {
  if (schemaType === 'PROTOBUF') {
    return withoutBlockComments(text)
      .replace(/\/\/[^\n]*/g, ' ')
      .replace(/\s+/g, ' ')
      .replace(/\s*([{};=,<>()[\]])\s*/g, '$1')
      .trim();
  }
  return JSON.stringify(sortKeys(parseJsonText(text)));
}

/**
 * Each `/* ... *\/` replaced by one space, exactly as `text.replace(/\/\*[\s\S]*?\*\//g, ' ')` does (schema
 * identities depend on it), in linear time: that regex rescans to the end of the text from every `/*` that
 * is never closed. Once one `/*` has no closing `*\/` after it, no later one has.
 */
export function withoutBlockComments(text: string): string {
  let out = '';
  let from = 0;
  for (;;) {
    const open = text.indexOf('/*', from);
    if (open < 0) break;
    const close = text.indexOf('*/', open + 2);
    if (close < 0) break;
    out += `${text.slice(from, open)} `;
    from = close + 2;
  }
  return out + text.slice(from);
}

/** `value` with every object's keys in sorted order: key order then makes no difference to its JSON text. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

export interface VersionEntry extends Contract {
  subject: string;
  version: number;
  id: number;
  schema: string;
  schemaType: string;
  references: SchemaReference[];
  deleted: boolean;
}

export interface StoredSchema extends Contract {
  id: number;
  schema: string;
  schemaType: string;
  references: SchemaReference[];
  /** `schemaType`, normalized schema and references: two schemas with equal identity are one schema. */
  identity: string;
}

export type ApplyOutcome = { accepted: true } | { accepted: false; reason: string };

const ACCEPTED: ApplyOutcome = { accepted: true };
const reject = (reason: string): ApplyOutcome => ({ accepted: false, reason });

/** A version's contract is part of its identity, as in Confluent: the same schema with other rules is another schema (and id). */
function identityOf(schema: string, schemaType: string, references: readonly SchemaReference[] = [], contract: Contract = {}): string {
  const refs = references.map((r) => [r.name, r.subject, r.version]);
  const { metadata, ruleSet } = contractOf(contract);
  const terms = metadata !== undefined || ruleSet !== undefined ? `:${JSON.stringify(sortKeys({ metadata: metadata ?? null, ruleSet: ruleSet ?? null }))}` : '';
  return `${schemaType}:${JSON.stringify(refs)}:${normalizeSchema(schema, schemaType)}${terms}`;
}

export class RegistryState {
  readonly #subjects = new Map<string, Map<number, VersionEntry>>();
  readonly #ids = new Map<number, StoredSchema>();
  /** How many versions (live or soft-deleted) use each id: an id lives while any does. */
  readonly #idUses = new Map<number, number>();
  readonly #idByIdentity = new Map<string, number>();
  readonly #configs = new Map<string, CompatibilityLevel>();
  /** Every CONFIG record's value by subject (null: global), for the contract keys. */
  readonly #configValues = new Map<string | null, ConfigValue>();
  #globalConfig: CompatibilityLevel | undefined;
  #mode: Mode = DEFAULT_MODE;
  readonly #modes = new Map<string, Mode>();
  // Never lowered, so ids of permanently deleted schemas are not handed out again by this process.
  #maxId = 0;
  /**
   * Versions whose own last record says live but which a DELETE_SUBJECT record
   * soft-deleted: that record is all that keeps them deleted after compaction.
   */
  readonly #deletedBySubject = new WeakSet<VersionEntry>();

  apply(record: LogRecord): ApplyOutcome {
    switch (record.key.keytype) {
      case 'SCHEMA':
        return record.value === null ? this.#applySchemaTombstone(record.key.subject, record.key.version) : this.#applySchema(record.value as SchemaValue);
      case 'CONFIG': {
        const value = record.value as ConfigValue | null;
        if (value === null) this.#configValues.delete(record.key.subject);
        else this.#configValues.set(record.key.subject, value);
        if (record.key.subject === null) this.#globalConfig = value?.compatibilityLevel;
        else if (value?.compatibilityLevel === undefined) this.#configs.delete(record.key.subject);
        else this.#configs.set(record.key.subject, value.compatibilityLevel);
        return ACCEPTED;
      }
      case 'MODE': {
        const value = record.value as ModeValue | null;
        if (record.key.subject === null) this.#mode = value?.mode ?? DEFAULT_MODE;
        else if (value === null) this.#modes.delete(record.key.subject);
        else this.#modes.set(record.key.subject, value.mode);
        return ACCEPTED;
      }
      case 'DELETE_SUBJECT': {
        const { subject } = record.key;
        const value = record.value as DeleteSubjectValue | null;
        const upTo = value?.version ?? 0;
        const uncovered = this.#deletedOnlyBySubject(subject).find((entry) => entry.version > upTo);
        if (uncovered) {
          return reject(`version ${uncovered.version} of '${subject}' is soft-deleted only by an earlier DELETE_SUBJECT record, which this one (up to version ${upTo}) would replace`);
        }
        for (const entry of this.#subjects.get(subject)?.values() ?? []) {
          if (entry.version > upTo || entry.deleted) continue;
          entry.deleted = true;
          this.#deletedBySubject.add(entry);
        }
        return ACCEPTED;
      }
      case 'NOOP':
        return ACCEPTED;
    }
  }

  #applySchema(value: SchemaValue): ApplyOutcome {
    const schemaType = value.schemaType ?? 'AVRO';
    const references = value.references ?? [];
    let identity: string;
    try {
      identity = identityOf(value.schema, schemaType, references, value);
    } catch (error) {
      return reject(`schema is not JSON: ${(error as Error).message}`);
    }
    const versions = this.#subjects.get(value.subject);
    const existing = versions?.get(value.version);
    if (existing) {
      if (existing.id !== value.id || this.#ids.get(existing.id)?.identity !== identity) {
        return reject(`version ${value.version} of '${value.subject}' already holds schema id ${existing.id}`);
      }
      if (existing.deleted && !value.deleted) return reject(`version ${value.version} of '${value.subject}' is soft-deleted; it cannot be revived`);
      existing.deleted = value.deleted;
      if (value.deleted) this.#deletedBySubject.delete(existing);
      return ACCEPTED;
    }
    const stored = this.#ids.get(value.id);
    if (stored && stored.identity !== identity) return reject(`id ${value.id} already belongs to a different schema`);
    const knownId = this.#idByIdentity.get(identity);
    if (knownId !== undefined && knownId !== value.id) return reject(`this schema already has id ${knownId}`);

    const entry: VersionEntry = {
      subject: value.subject,
      version: value.version,
      id: value.id,
      schema: stored?.schema ?? value.schema,
      schemaType,
      references,
      deleted: value.deleted,
      ...contractOf(stored ?? value),
    };
    if (versions) versions.set(value.version, entry);
    else this.#subjects.set(value.subject, new Map([[value.version, entry]]));
    if (!stored) {
      this.#ids.set(value.id, { id: value.id, schema: value.schema, schemaType, references, identity, ...contractOf(value) });
      this.#idByIdentity.set(identity, value.id);
    }
    this.#idUses.set(value.id, (this.#idUses.get(value.id) ?? 0) + 1);
    this.#maxId = Math.max(this.#maxId, value.id);
    return ACCEPTED;
  }

  #applySchemaTombstone(subject: string, version: number): ApplyOutcome {
    const versions = this.#subjects.get(subject);
    const existing = versions?.get(version);
    // Already gone: deleting twice is harmless and keeps replays of compacted logs identical.
    if (!versions || !existing) return ACCEPTED;
    if (!existing.deleted) return reject(`version ${version} of '${subject}' must be soft-deleted before it is permanently deleted`);
    versions.delete(version);
    if (versions.size === 0) this.#subjects.delete(subject);
    const uses = (this.#idUses.get(existing.id) ?? 1) - 1;
    if (uses > 0) {
      this.#idUses.set(existing.id, uses);
    } else {
      const stored = this.#ids.get(existing.id);
      this.#idUses.delete(existing.id);
      this.#ids.delete(existing.id);
      if (stored) this.#idByIdentity.delete(stored.identity);
    }
    return ACCEPTED;
  }

  // ---- queries ----

  get maxId(): number {
    return this.#maxId;
  }

  get mode(): Mode {
    return this.#mode;
  }

  /** The subject's own mode, if it has one. */
  subjectMode(subject: string): Mode | undefined {
    return this.#modes.get(subject);
  }

  effectiveMode(subject: string): Mode {
    return this.#modes.get(subject) ?? this.#mode;
  }

  /** Ids of the live schemas whose references name `subject` version `version`, ascending. */
  referencedBy(subject: string, version: number): number[] {
    const ids = new Set<number>();
    for (const versions of this.#subjects.values()) {
      for (const entry of versions.values()) {
        if (!entry.deleted && entry.references.some((r) => r.subject === subject && r.version === version)) ids.add(entry.id);
      }
    }
    return [...ids].sort((a, b) => a - b);
  }

  get globalCompatibility(): CompatibilityLevel {
    return this.#globalConfig ?? DEFAULT_COMPATIBILITY;
  }

  /** The subject's own level, if it has one. */
  subjectCompatibility(subject: string): CompatibilityLevel | undefined {
    return this.#configs.get(subject);
  }

  /** The config record as written for `subject` (null: global), if any. */
  configValue(subject: string | null): ConfigValue | undefined {
    return this.#configValues.get(subject);
  }

  /** Each contract key from the subject's config, else the global one (as Confluent falls back key by key). */
  effectiveContractConfig(subject: string): Omit<ConfigValue, 'compatibilityLevel'> {
    const own = this.#configValues.get(subject) ?? {};
    const global = this.#configValues.get(null) ?? {};
    const out: Omit<ConfigValue, 'compatibilityLevel'> = {};
    for (const name of CONFIG_CONTRACT_KEYS) {
      const value = own[name] ?? global[name];
      if (value !== undefined) (out as Record<string, unknown>)[name] = value;
    }
    return out;
  }

  effectiveCompatibility(subject: string): CompatibilityLevel {
    return this.#configs.get(subject) ?? this.globalCompatibility;
  }

  /** Subjects with a live version (or any version when `includeDeleted`), sorted. */
  subjects(includeDeleted = false): string[] {
    const out: string[] = [];
    for (const [subject, versions] of this.#subjects) {
      if (includeDeleted || [...versions.values()].some((v) => !v.deleted)) out.push(subject);
    }
    return out.sort();
  }

  /** Whether the subject has versions, but all of them are soft-deleted. */
  isSoftDeleted(subject: string): boolean {
    const versions = this.#subjects.get(subject);
    return versions !== undefined && [...versions.values()].every((v) => v.deleted);
  }

  hasSubject(subject: string, includeDeleted = false): boolean {
    return this.versions(subject, includeDeleted).length > 0;
  }

  versions(subject: string, includeDeleted = false): VersionEntry[] {
    const versions = this.#subjects.get(subject);
    if (!versions) return [];
    return [...versions.values()].filter((v) => includeDeleted || !v.deleted).sort((a, b) => a.version - b.version);
  }

  version(subject: string, version: number): VersionEntry | undefined {
    return this.#subjects.get(subject)?.get(version);
  }

  latest(subject: string, includeDeleted = false): VersionEntry | undefined {
    return this.versions(subject, includeDeleted).at(-1);
  }

  /** The version number a new registration under `subject` gets. */
  nextVersion(subject: string): number {
    return (this.latest(subject, true)?.version ?? 0) + 1;
  }

  schemaById(id: number): StoredSchema | undefined {
    return this.#ids.get(id);
  }

  idOf(schema: string, schemaType = 'AVRO', references: readonly SchemaReference[] = [], contract: Contract = {}): number | undefined {
    return this.#idByIdentity.get(identityOf(schema, schemaType, references, contract));
  }

  /** The version of `subject` holding `schema` (with `contract`), if any. */
  findInSubject(subject: string, schema: string, schemaType = 'AVRO', references: readonly SchemaReference[] = [], includeDeleted = false, contract: Contract = {}): VersionEntry | undefined {
    const id = this.idOf(schema, schemaType, references, contract);
    if (id === undefined) return undefined;
    return this.versions(subject, includeDeleted).find((v) => v.id === id);
  }

  usesOfId(id: number, includeDeleted = false): VersionEntry[] {
    const out: VersionEntry[] = [];
    for (const subject of [...this.#subjects.keys()].sort()) {
      for (const entry of this.versions(subject, includeDeleted)) if (entry.id === id) out.push(entry);
    }
    return out;
  }

  #deletedOnlyBySubject(subject: string): VersionEntry[] {
    return this.versions(subject, true).filter((entry) => this.#deletedBySubject.has(entry));
  }

  /**
   * Records to append after a rejected record of `key`, so that compaction,
   * which keeps only a key's last record, cannot bring the rejected one back;
   * applied right away they change nothing. A DELETE_SUBJECT key is not
   * re-stated as one record: no version number may cover exactly the versions
   * it deleted (IMPORT can add a live version below them). Instead each of them
   * states its own soft delete, and the key, now relied on by nothing, is
   * tombstoned. CONFIG and MODE records are never rejected.
   */
  repairRecords(key: RecordKey): LogRecord[] {
    switch (key.keytype) {
      case 'SCHEMA':
        return [this.currentRecord(key)];
      case 'DELETE_SUBJECT':
        return [...this.#deletedOnlyBySubject(key.subject).map((entry) => this.currentRecord(schemaKey(entry.subject, entry.version))), { key, value: null }];
      default:
        return [];
    }
  }

  /** The record that states what this state holds for `key` (a tombstone when nothing). */
  currentRecord(key: Extract<RecordKey, { keytype: 'SCHEMA' }>): LogRecord {
    const entry = this.version(key.subject, key.version);
    if (!entry) return { key, value: null };
    return { key, value: schemaValueOf(entry) };
  }

  /** A plain, ordered picture of the whole state, for comparing two replays. */
  snapshot(): unknown {
    return {
      subjects: [...this.#subjects.keys()].sort().map((s) => this.versions(s, true).map((v) => ({ ...v }))),
      ids: [...this.#ids.values()].sort((a, b) => a.id - b.id).map(({ id, schema }) => ({ id, schema })),
      configs: [...this.#configs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
      global: this.#globalConfig ?? null,
      mode: this.#mode,
      modes: [...this.#modes.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
    };
  }
}
