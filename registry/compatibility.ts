import avro, { type Schema, type Type } from 'avsc';
import { RegistryError } from '../core/errors.ts';
import { parseJsonText } from '../core/json.ts';

/**
 * Avro schema compatibility, as Confluent's registry defines it on top of the
 * Avro specification's resolution rules. avsc's `createResolver` is the
 * authority on whether a writer can be read by a reader; the walk in
 * `explainIncompatibility` only turns its terse refusal into reasons that name
 * the field and the rule.
 */

export const COMPATIBILITY_LEVELS = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

export function isCompatibilityLevel(value: unknown): value is CompatibilityLevel {
  return typeof value === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(value);
}

// Plain types: logical types are annotations for compatibility (a timestamp-millis is a long).
const parsed = new Map<string, Type>();
const PARSED_CACHE_LIMIT = 2000;

/**
 * Parses Avro schema text, refusing anything avsc would not accept (42201).
 * `references` are the texts of the schemas it references, dependencies first:
 * their named types are parsed into the same registry.
 */
export function parseAvroSchema(text: string, references: readonly string[] = []): Type {
  const cacheKey = references.length === 0 ? text : JSON.stringify([text, ...references]);
  const cached = parsed.get(cacheKey);
  if (cached) return cached;
  let json: unknown;
  try {
    json = parseJsonText(text);
  } catch (error) {
    throw RegistryError.invalidSchema(`Invalid schema: not JSON (${(error as Error).message})`, error);
  }
  let type: Type;
  try {
    const registry: { [name: string]: Type } = {};
    for (const reference of references) avro.Type.forSchema(JSON.parse(reference) as Schema, { registry });
    type = avro.Type.forSchema(json as Schema, { registry });
  } catch (error) {
    throw RegistryError.invalidSchema(`Invalid schema ${text}: ${(error as Error).message}`, error);
  }
  if (parsed.size >= PARSED_CACHE_LIMIT) parsed.clear();
  parsed.set(cacheKey, type);
  return type;
}

export function canRead(reader: Type, writer: Type): boolean {
  try {
    reader.createResolver(writer);
    return true;
  } catch {
    // Refusal is the answer here; explainIncompatibility says why.
    return false;
  }
}

export interface PreviousSchema<T = Type> {
  version: number;
  type: T;
}

/** Reasons data written with `writer` cannot be read with `reader`; empty when it can. */
export type Explain<T> = (reader: T, writer: T) => string[];

/**
 * Why `candidate` may not join a subject whose live versions are `previous`
 * (oldest first) under `level`; an empty list means compatible. The levels
 * are the same for every format; `explain` holds the format's rules.
 */
export function checkCompatibility<T = Type>(
  level: CompatibilityLevel,
  candidate: T,
  previous: readonly PreviousSchema<T>[],
  explain: Explain<T> = explainIncompatibility as unknown as Explain<T>,
): string[] {
  if (level === 'NONE' || previous.length === 0) return [];
  const transitive = level.endsWith('_TRANSITIVE');
  const against = transitive ? previous : previous.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  for (const old of against) {
    if (backward) {
      for (const reason of explain(candidate, old.type)) {
        messages.push(`${level}: the new schema cannot read data written with version ${old.version}: ${reason}`);
      }
    }
    if (forward) {
      for (const reason of explain(old.type, candidate)) {
        messages.push(`${level}: version ${old.version} cannot read data written with the new schema: ${reason}`);
      }
    }
  }
  return messages;
}

interface FieldLike {
  name: string;
  type: Type;
  aliases: string[];
  defaultValue(): unknown;
}

type AnyType = Type & {
  typeName: string;
  name?: string;
  fields?: FieldLike[];
  symbols?: string[];
  size?: number;
  types?: Type[];
  itemsType?: Type;
  valuesType?: Type;
  aliases?: string[];
  default?: unknown;
};

const t = (type: Type): AnyType => type as AnyType;

function label(type: Type): string {
  const x = t(type);
  if (x.name) return `${x.typeName} ${x.name}`;
  if (x.typeName.startsWith('union')) return `union [${(x.types ?? []).map(label).join(', ')}]`;
  if (x.itemsType) return `array<${label(x.itemsType)}>`;
  if (x.valuesType) return `map<${label(x.valuesType)}>`;
  return x.typeName;
}

function unqualified(name: string | undefined): string {
  return (name ?? '').split('.').pop() ?? '';
}

function namesMatch(reader: AnyType, writer: AnyType): boolean {
  const writerName = writer.name ?? '';
  const aliases = reader.aliases ?? [];
  return reader.name === writerName || unqualified(reader.name) === unqualified(writerName) || aliases.includes(writerName);
}

const PROMOTIONS = 'int→long/float/double, long→float/double, float→double, string↔bytes';

/**
 * Reasons data written with `writer` cannot be read with `reader`, each naming
 * the path and the Avro resolution rule broken; empty when it can be read.
 */
export function explainIncompatibility(reader: Type, writer: Type): string[] {
  if (canRead(reader, writer)) return [];
  const reasons = walk(reader, writer, '', new Set());
  if (reasons.length > 0) return reasons;
  // The walk found nothing more precise: avsc's own message is still a reason.
  try {
    reader.createResolver(writer);
  } catch (error) {
    return [`${(error as Error).message}`];
  }
  return [];
}

function at(path: string): string {
  return path === '' ? '(root)' : path;
}

function walk(readerType: Type, writerType: Type, path: string, seen: Set<string>): string[] {
  if (canRead(readerType, writerType)) return [];
  const reader = t(readerType);
  const writer = t(writerType);
  const readerIsUnion = reader.typeName.startsWith('union');
  const writerIsUnion = writer.typeName.startsWith('union');

  if (writerIsUnion) {
    // Every branch the writer may have used must be readable.
    const out: string[] = [];
    for (const branch of writer.types ?? []) {
      if (canRead(readerType, branch)) continue;
      out.push(...walk(readerType, branch, path, seen));
    }
    return out;
  }
  if (readerIsUnion) {
    // Point inside the branch with the same kind/name, which is most likely the intended one.
    const sameKind = (reader.types ?? []).find((b) => t(b).typeName === writer.typeName && (!writer.name || namesMatch(t(b), writer)));
    // Empty only when that pair is already being explained higher up a recursive type.
    if (sameKind) return walk(sameKind, writerType, path, seen);
    return [`${at(path)}: MISSING_UNION_BRANCH: writer type ${label(writerType)} matches no branch of reader ${label(readerType)}`];
  }
  if (reader.typeName !== writer.typeName) {
    return [`${at(path)}: TYPE_MISMATCH: reader type ${label(readerType)} cannot read writer type ${label(writerType)} (allowed promotions: ${PROMOTIONS})`];
  }
  switch (reader.typeName) {
    case 'record':
    case 'error': {
      if (!namesMatch(reader, writer)) {
        return [`${at(path)}: NAME_MISMATCH: reader record ${reader.name} does not match writer record ${writer.name} (add "${writer.name}" to the reader's aliases)`];
      }
      const pair = `${reader.name}<-${writer.name}`;
      // Recursive records: one visit per (reader, writer) pair is enough to find every field.
      if (seen.has(pair)) return [];
      seen.add(pair);
      const out: string[] = [];
      const writerFields = writer.fields ?? [];
      for (const field of reader.fields ?? []) {
        const fieldPath = path === '' ? `${reader.name}.${field.name}` : `${path}.${field.name}`;
        const match = writerFields.find((w) => w.name === field.name) ?? writerFields.find((w) => field.aliases.includes(w.name));
        if (!match) {
          if (field.defaultValue() === undefined) {
            out.push(`${fieldPath}: READER_FIELD_MISSING_DEFAULT_VALUE: field '${field.name}' is not in the writer schema and has no default in the reader schema`);
          }
          continue;
        }
        out.push(...walk(field.type, match.type, fieldPath, seen));
      }
      return out;
    }
    case 'enum': {
      if (!namesMatch(reader, writer)) {
        return [`${at(path)}: NAME_MISMATCH: reader enum ${reader.name} does not match writer enum ${writer.name}`];
      }
      const readerSymbols = new Set(reader.symbols ?? []);
      const missing = (writer.symbols ?? []).filter((s) => !readerSymbols.has(s));
      return [`${at(path)}: MISSING_ENUM_SYMBOLS: reader enum ${reader.name} lacks writer symbol(s) ${missing.join(', ')} and has no default symbol`];
    }
    case 'fixed': {
      if (!namesMatch(reader, writer)) {
        return [`${at(path)}: NAME_MISMATCH: reader fixed ${reader.name} does not match writer fixed ${writer.name}`];
      }
      return [`${at(path)}: FIXED_SIZE_MISMATCH: reader fixed ${reader.name} has size ${reader.size}, writer has size ${writer.size}`];
    }
    case 'array':
      return walk(reader.itemsType as Type, writer.itemsType as Type, `${path}[]`, seen);
    case 'map':
      return walk(reader.valuesType as Type, writer.valuesType as Type, `${path}{}`, seen);
    default:
      return [`${at(path)}: TYPE_MISMATCH: reader type ${label(readerType)} cannot read writer type ${label(writerType)} (allowed promotions: ${PROMOTIONS})`];
  }
}
