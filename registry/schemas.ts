import { createHash } from 'node:crypto';
import type { Type } from 'avsc';
import { normalizeRuleSet, validateMetadata, validateRuleSet, type Metadata, type RuleSet } from '../rules/index.ts';
import { jsonSchemaDocument, jsonValidatorCode, type JsonSchemaDocument } from '../core/formats/json-schema.ts';
import { JsonSchemaCompileError, jsonSchemaCompiler } from '../core/formats/json-schema-compiler.ts';
import { parseProtoFile, type ProtoFile } from '../core/formats/protobuf.ts';
import { descriptorToProto, isSerializedDescriptor } from '../core/formats/proto-descriptor.ts';
import { isSchemaType, SCHEMA_TYPES, type ResolvedReference, type ResolvedSchema, type SchemaReference, type SchemaType } from '../core/formats/types.ts';
import { RegistryError } from '../core/errors.ts';
import { JsonTooDeepError, jsonBeyondBounds, parseJsonText } from '../core/json.ts';
import { explainJsonSchemaIncompatibility } from './compat/json-schema.ts';
import { explainProtobufIncompatibility } from './compat/protobuf.ts';
import { checkCompatibility, explainIncompatibility, parseAvroSchema } from './compatibility.ts';
import { normalizeSchema, type RegistryState } from './state.ts';
import { refuseUnknownFields } from './fields.ts';
import { LONG_TEXT, STEP_MEMO_LIMIT, TextMemo, textsKey, yieldToLoop } from '../core/turns.ts';

/**
 * Schemas of the three formats as the registry handles them: parsed with
 * their references resolved from the registry's own state, and compared with
 * the format's compatibility rules.
 */

export type ParsedSchema = { schemaType: 'AVRO'; type: Type } | { schemaType: 'JSON'; codec: JsonSchemaDocument } | { schemaType: 'PROTOBUF'; file: ProtoFile };

export interface SchemaRequest {
  /** The schema text as stored: compact JSON for Avro and JSON Schema (key order kept), the text itself for Protobuf. */
  schema: string;
  schemaType: SchemaType;
  references: SchemaReference[];
  parsed: ParsedSchema;
  /** An explicit id and version (IMPORT mode only). */
  id?: number;
  version?: number;
  /** The request's own `metadata` and `ruleSet`, validated (merged with the previous version and config at registration). */
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

/**
 * A request's `metadata` and `ruleSet`: every rule checked (its expression
 * compiled, its kind, mode, type and actions known, names unique); the first
 * problem is a 422 (42201) naming the rule and the field, as Confluent
 * answers an invalid rule.
 */
export function parseContract(body: Record<string, unknown>): { metadata?: Metadata; ruleSet?: RuleSet } {
  const problems = [...validateMetadata(body.metadata), ...validateRuleSet(body.ruleSet, body.metadata)];
  if (problems.length > 0) {
    const first = problems[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    throw RegistryError.invalidSchema(`Invalid ${first.rule !== undefined ? `rule '${first.rule}'` : 'data contract'}: ${first.path}: ${first.message}${more}`);
  }
  return {
    ...(isObject(body.metadata) ? { metadata: body.metadata as Metadata } : {}),
    ...(isObject(body.ruleSet) ? { ruleSet: normalizeRuleSet(body.ruleSet as RuleSet) } : {}),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** References of one schema at most: each is stored, hashed into the schema's identity and resolved on every check. */
export const MAX_REFERENCES = 1_000;

function parseReferences(raw: unknown): SchemaReference[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw RegistryError.invalidSchema('"references" must be a list of {name, subject, version}');
  if (raw.length > MAX_REFERENCES) throw RegistryError.invalidSchema(`"references" has ${raw.length} entries; at most ${MAX_REFERENCES}`);
  return raw.map((r: unknown, i) => {
    if (!isObject(r) || typeof r.name !== 'string' || r.name === '' || typeof r.subject !== 'string' || r.subject === '' || !isPositiveInt(r.version)) {
      throw RegistryError.invalidSchema(`references[${i}] must be {"name": string, "subject": string, "version": positive integer}`);
    }
    refuseUnknownFields(r, REFERENCE_FIELDS, `references[${i}]`);
    // A JSON Schema's reference name is the URI ajv resolves it by (see MAX_SCHEMA_URI).
    if (r.name.length > MAX_SCHEMA_URI) throw RegistryError.invalidSchema(`references[${i}].name is longer than ${MAX_SCHEMA_URI} characters`);
    return { name: r.name, subject: r.subject, version: r.version };
  });
}

/** Whether the caller may read a subject (registry:read on it); the registry passes the principal's check. */
export type SubjectReadable = (subject: string) => boolean;
const ANY_SUBJECT: SubjectReadable = () => true;

/**
 * The texts of everything `references` lead to, dependencies first, each once.
 * A reference to a version that does not exist is refused (42201), naming it;
 * so is one to a subject the caller may not read, with the same words, so the
 * answer does not tell whether it exists. (References of a referenced schema
 * are part of a schema the caller may read, and are followed.)
 */
export function resolveReferences(state: RegistryState, references: readonly SchemaReference[], canRead: SubjectReadable = ANY_SUBJECT): ResolvedReference[] {
  const out: ResolvedReference[] = [];
  const done = new Set<string>();
  const visit = (ref: SchemaReference, chain: readonly string[]): void => {
    const key = `${ref.subject}/${ref.version}`;
    if (done.has(key)) return;
    if (chain.includes(key)) throw RegistryError.invalidSchema(`Circular schema reference: ${[...chain, key].join(' -> ')}`);
    const entry = chain.length > 0 || canRead(ref.subject) ? state.version(ref.subject, ref.version) : undefined;
    if (!entry) throw RegistryError.invalidSchema(`Invalid schema reference ${JSON.stringify(ref)}: subject '${ref.subject}' has no version ${ref.version}`);
    for (const inner of entry.references) visit(inner, [...chain, key]);
    done.add(key);
    out.push({ name: ref.name, schema: entry.schema });
  };
  for (const ref of references) visit(ref, []);
  return out;
}

/**
 * What ajv said of JSON Schemas the registry was sent (undefined: it compiles; else its refusal), by a hash of
 * the text and its references' texts. The registry needs no validator, only to know that ajv accepts the schema,
 * and ajv takes up to seconds to tell: `prepareSchemaRequest` asks the compiler's worker before a request is planned,
 * so the plan (synchronous, and re-run after a conflict) finds the answer here and holds the event loop for none of it.
 */
const verdicts = new Map<string, string | undefined>();
const VERDICT_LIMIT = 1000;

const verdictKey = (resolved: ResolvedSchema): string =>
  createHash('sha256')
    .update(JSON.stringify([resolved.schema, resolved.references]))
    .digest('base64');

function remember(key: string, verdict: string | undefined): void {
  if (verdicts.size >= VERDICT_LIMIT) verdicts.delete(verdicts.keys().next().value!);
  verdicts.set(key, verdict);
}

/** Throws ajv's refusal of a JSON Schema; compiles here only when `prepareSchemaRequest` did not see it first (a unit test, the command line). */
function requireCompiles(resolved: ResolvedSchema): void {
  const key = verdictKey(resolved);
  if (!verdicts.has(key)) {
    try {
      jsonValidatorCode(resolved);
      remember(key, undefined);
    } catch (error) {
      remember(key, (error as Error).message);
    }
  }
  const refusal = verdicts.get(key);
  if (refusal !== undefined) throw new Error(refusal);
}

type CompileCheck = (resolved: ResolvedSchema) => void;

/**
 * Parses schema text of any type; a schema or reference that does not parse is refused (42201). A JSON Schema
 * is compiled (`check`) unless `stored`: a stored version was compiled when it was registered, and comparing
 * versions needs only the parsed documents.
 */
export function parseSchema(schemaType: SchemaType, schema: string, resolved: readonly ResolvedReference[], stored = false, check: CompileCheck = requireCompiles): ParsedSchema {
  const parsed = schema.length >= LONG_TEXT ? formatParses.get(resolvedKey(schemaType, schema, resolved), () => parseFormat(schemaType, schema, resolved)) : parseFormat(schemaType, schema, resolved);
  if (schemaType === 'JSON' && !stored) {
    try {
      check({ schemaType, schema, references: resolved });
    } catch (error) {
      throw RegistryError.invalidSchema(`Invalid ${schemaType} schema: ${(error as Error).message}`, error);
    }
  }
  return parsed;
}

/** Long texts parsed by their format's parser (or its refusal), for the plan after prepareSchemaRequest parsed them. */
const formatParses = new TextMemo<ParsedSchema>(STEP_MEMO_LIMIT);

const resolvedKey = (schemaType: string, schema: string, resolved: readonly ResolvedReference[]): string => textsKey([schemaType, schema, ...resolved.flatMap((r) => [r.name, r.schema])]);

function parseFormat(schemaType: SchemaType, schema: string, resolved: readonly ResolvedReference[]): ParsedSchema {
  if (schemaType === 'AVRO') {
    return {
      schemaType,
      type: parseAvroSchema(
        schema,
        resolved.map((r) => r.schema),
      ),
    };
  }
  try {
    if (schemaType === 'PROTOBUF') return { schemaType, file: parseProtoFile({ schemaType, schema, references: resolved }) };
    return { schemaType, codec: jsonSchemaDocument({ schemaType, schema, references: resolved }) };
  } catch (error) {
    throw RegistryError.invalidSchema(`Invalid ${schemaType} schema: ${(error as Error).message}`, error);
  }
}

/**
 * Before a request with a schema is planned. The plan is synchronous (and re-run after a conflict), and a long
 * text takes several steps of up to tens of milliseconds each (bounds, the format's parser, the stored form, its
 * identity, the subject's versions it is compared with): here each runs in a turn of its own and its result is
 * kept, so the plan finds them done and no turn holds the event loop the registry shares for the sum.
 * A JSON Schema is then compiled on the compiler's worker, and ajv's verdict kept for the plan. Anything wrong
 * with the request is left to the plan, which answers it in its own order (a lookup's unknown subject before
 * the schema's problems). A schema ajv cannot compile within the compiler's time limit is refused as too
 * complex (42201); a full compiler queue is a 503.
 */
export async function prepareSchemaRequest(state: RegistryState, body: unknown, canRead: SubjectReadable = ANY_SUBJECT, options: { subject?: string; normalize?: boolean } = {}): Promise<void> {
  if (!isObject(body)) return;
  if (typeof body.schema === 'string' && body.schema.length >= LONG_TEXT) await parseInSteps(state, body, body.schema, canRead, options);
  // Only a JSON Schema is compiled: any other request would be parsed here for nothing, then again by its plan.
  if (body.schemaType !== 'JSON') return;
  let toCompile: ResolvedSchema | undefined;
  try {
    parseSchemaRequest(state, body, {
      canRead,
      check: (resolved) => {
        toCompile = resolved;
        throw new Error('compiled off the event loop');
      },
    });
  } catch {
    // The plan answers this request's problems.
  }
  if (toCompile === undefined) return;
  const key = verdictKey(toCompile);
  if (verdicts.has(key)) return;
  try {
    await jsonSchemaCompiler.code(toCompile);
    remember(key, undefined);
  } catch (error) {
    if (!(error instanceof JsonSchemaCompileError)) throw error;
    remember(key, error.message);
  }
}

/** The steps of parseSchemaRequest (and of the plan's comparisons) for a long text, each in its own turn; the first refusal ends them. */
async function parseInSteps(state: RegistryState, body: Record<string, unknown>, schema: string, canRead: SubjectReadable, options: { subject?: string; normalize?: boolean }): Promise<void> {
  const schemaType = body.schemaType === undefined || body.schemaType === null ? 'AVRO' : body.schemaType;
  if (!isSchemaType(schemaType) || (schemaType === 'PROTOBUF' && isSerializedDescriptor(schema))) return;
  const steps: (() => unknown)[] = [];
  let resolved: ResolvedReference[] = [];
  let parsed: ParsedSchema | undefined;
  let text = schema;
  if (schemaType !== 'PROTOBUF') steps.push(() => requireBoundedJson(schemaType, schema));
  steps.push(
    () => (resolved = resolveReferences(state, parseReferences(body.references), canRead)),
    () => (parsed = parseSchema(schemaType, schema, resolved, true)),
    () => (text = storedText(schemaType, schema, options.normalize === true)),
    () => normalizeSchema(text, schemaType),
  );
  const subject = options.subject;
  if (subject !== undefined) {
    const versions = state.versions(subject);
    for (const version of versions) steps.push(() => parseStored(state, version));
    // The comparisons the subject's level makes (the latest version, or every one when transitive), one a turn.
    const level = state.effectiveCompatibility(subject);
    for (const version of level.endsWith('_TRANSITIVE') ? versions : versions.slice(-1)) {
      steps.push(() => parsed && checkCompatibility(level, parsed, [{ version: version.version, type: parseStored(state, version) }], explainSchemaIncompatibility));
    }
  }
  for (const step of steps) {
    // The first turn is the one the body was read in (JSON.parse of up to 1 MiB).
    await yieldToLoop();
    try {
      step();
    } catch {
      return; // the plan answers it
    }
  }
  await yieldToLoop();
}

/**
 * Bounds on a submitted Avro or JSON Schema text, checked before any format parser sees it: avsc, ajv and
 * key sorting recurse (a deeper value overflows the stack after seconds of work), and ajv's compile time
 * grows faster than the number of subschemas (1 MiB of properties took ~10 s). Real schemas stay far below.
 */
export const MAX_SCHEMA_DEPTH = 128;
export const MAX_JSON_SCHEMA_CONTAINERS = 2_000;
/** avsc builds code per field and type: about 20 µs of CPU each here, so 1 MiB of fields held the loop for ~1 s. */
export const MAX_AVRO_SCHEMA_CONTAINERS = 4_000;
/** avsc resolves a writer's enum against a reader's with an `indexOf` per symbol: 1 MiB of symbols took 7 s. */
export const MAX_AVRO_ENUM_SYMBOLS = 5_000;

/** The path of the first enum with more symbols than MAX_AVRO_ENUM_SYMBOLS (the walk's depth is bounded before). */
function oversizedEnum(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = oversizedEnum(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    const symbols = (value as { symbols?: unknown }).symbols;
    if (Array.isArray(symbols) && symbols.length > MAX_AVRO_ENUM_SYMBOLS) return `${path || '(root)'} has ${symbols.length} enum symbols; at most ${MAX_AVRO_ENUM_SYMBOLS}`;
    for (const [key, child] of Object.entries(value)) {
      const found = oversizedEnum(child, path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return undefined;
}

function requireBoundedJson(schemaType: 'AVRO' | 'JSON', text: string): void {
  if (text.length >= LONG_TEXT) boundsChecked.get(textsKey([schemaType, text]), () => requireBoundedJsonNow(schemaType, text));
  else requireBoundedJsonNow(schemaType, text);
}

/** Long texts found within bounds (or the refusal), for the plan after prepareSchemaRequest checked them. */
const boundsChecked = new TextMemo<void>(STEP_MEMO_LIMIT);

function requireBoundedJsonNow(schemaType: 'AVRO' | 'JSON', text: string): void {
  let value: unknown;
  try {
    value = parseJsonText(text, MAX_SCHEMA_DEPTH); // the depth checked before JSON.parse, whose time grows with it
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw RegistryError.invalidSchema(`Invalid ${schemaType} schema: "schema" ${error.message}`, error);
    return; // not JSON: the format's own parser says where
  }
  const problem = jsonBeyondBounds(value, MAX_SCHEMA_DEPTH, schemaType === 'JSON' ? MAX_JSON_SCHEMA_CONTAINERS : MAX_AVRO_SCHEMA_CONTAINERS);
  if (problem) throw RegistryError.invalidSchema(`Invalid ${schemaType} schema: "schema" ${problem}`);
  const manySymbols = schemaType === 'AVRO' ? oversizedEnum(value, '') : undefined;
  if (manySymbols) throw RegistryError.invalidSchema(`Invalid AVRO schema: "schema" at ${manySymbols}`);
  const longUri = schemaType === 'JSON' ? uriBeyondBound(value) : undefined;
  if (longUri) throw RegistryError.invalidSchema(`Invalid JSON schema: "schema" at ${longUri} is longer than ${MAX_SCHEMA_URI} characters`);
}

/**
 * Longest URI a JSON Schema keyword or a reference name may hold. ajv parses, normalizes and resolves each
 * with fast-uri several times while compiling, at ~2 µs a character: one 1 MiB `$ref` took 1-2 s, and the
 * registry answers on the same event loop as everything else. Real URIs stay far below.
 */
export const MAX_SCHEMA_URI = 2_048;
const URI_KEYWORDS = ['$ref', '$id', '$schema', '$anchor', '$dynamicRef', '$dynamicAnchor', '$recursiveRef'];

/** The JSON pointer of the first URI keyword in `value` (a bounded parsed schema) longer than MAX_SCHEMA_URI. */
function uriBeyondBound(value: unknown): string | undefined {
  const stack: { item: unknown; pointer: string }[] = [{ item: value, pointer: '' }];
  while (stack.length > 0) {
    const { item, pointer } = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    for (const [key, child] of Object.entries(item)) {
      const at = `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (typeof child === 'string' && child.length > MAX_SCHEMA_URI && !Array.isArray(item) && URI_KEYWORDS.includes(key)) return at;
      if (child !== null && typeof child === 'object') stack.push({ item: child, pointer: at });
    }
  }
  return undefined;
}

/** A base64 FileDescriptorProto (Confluent's Python ProtobufSerializer registers these) as the .proto text Confluent keeps. */
function protoTextOf(base64: string): string {
  try {
    return descriptorToProto(base64);
  } catch (error) {
    throw RegistryError.invalidSchema(`Invalid PROTOBUF schema: neither .proto text nor a base64 FileDescriptorProto (${(error as Error).message})`, error);
  }
}

/** The fields of Confluent's RegisterSchemaRequest that Sluice keeps; `subject`, which Confluent's clients echo from a version they read, is taken when it is the URL's. */
const REQUEST_FIELDS = new Set(['schema', 'schemaType', 'references', 'id', 'version', 'metadata', 'ruleSet', 'subject']);
const REFERENCE_FIELDS = new Set(['name', 'subject', 'version']);

function requireKnownFields(body: Record<string, unknown>, subject: string | undefined): void {
  refuseUnknownFields(body, REQUEST_FIELDS);
  const echoed = body.subject;
  if (subject !== undefined && echoed !== undefined && echoed !== null && echoed !== subject) {
    throw RegistryError.invalidSchema(`"subject" is ${JSON.stringify(echoed)} but the request is for subject ${JSON.stringify(subject)}`);
  }
}

export interface SchemaRequestOptions {
  /** The URL's subject, which an echoed `subject` field must equal (unchecked when not given: prepareSchemaRequest's look-ahead). */
  subject?: string;
  canRead?: SubjectReadable;
  /** `?normalize=true`: the schema is kept in its normalized form (keys sorted; Protobuf without comments and extra whitespace), as Confluent does. */
  normalize?: boolean;
  check?: CompileCheck;
}

/** Validates a `{schema, schemaType?, references?, id?, version?, metadata?, ruleSet?}` body (42201 when unusable). */
export function parseSchemaRequest(state: RegistryState, body: unknown, options: SchemaRequestOptions = {}): SchemaRequest {
  const { subject, canRead = ANY_SUBJECT, normalize = false, check = requireCompiles } = options;
  if (!isObject(body)) throw RegistryError.invalidSchema('The request body must be a JSON object with a "schema" string');
  requireKnownFields(body, subject);
  const { schema, schemaType: rawType, references: rawReferences, id, version } = body;
  const schemaType = rawType === undefined || rawType === null ? 'AVRO' : rawType;
  if (!isSchemaType(schemaType)) throw RegistryError.invalidSchema(`Unsupported schemaType ${JSON.stringify(rawType)}: use one of ${SCHEMA_TYPES.join(', ')}`);
  if (typeof schema !== 'string' || schema.trim() === '') {
    throw RegistryError.invalidSchema('Empty schema: the body needs a "schema" field holding the schema as a string');
  }
  if (id !== undefined && id !== null && !isPositiveInt(id)) throw RegistryError.invalidSchema('"id" must be a positive integer');
  if (version !== undefined && version !== null && !isPositiveInt(version)) throw RegistryError.invalidVersion(String(version));
  const references = parseReferences(rawReferences);
  if (schemaType !== 'PROTOBUF') requireBoundedJson(schemaType, schema);
  else if (isSerializedDescriptor(schema)) return parseSchemaRequest(state, { ...body, schema: protoTextOf(schema) }, options);
  const parsed = parseSchema(schemaType, schema, resolveReferences(state, references, canRead), false, check);
  const text = storedText(schemaType, schema, normalize);
  return {
    schema: text,
    schemaType,
    references,
    parsed,
    ...(isPositiveInt(id) ? { id } : {}),
    ...(isPositiveInt(version) ? { version } : {}),
    ...parseContract(body),
  };
}

/** A schema's text as stored: its normalized form when asked; else compact JSON for Avro and JSON Schema (key order kept), Protobuf text as given. */
function storedText(schemaType: SchemaType, schema: string, normalize: boolean): string {
  if (normalize) return normalizeSchema(schema, schemaType);
  if (schemaType === 'PROTOBUF') return schema;
  return schema.length >= LONG_TEXT ? compacted.get(textsKey([schema]), () => JSON.stringify(parseJsonText(schema))) : JSON.stringify(parseJsonText(schema));
}

const compacted = new TextMemo<string>(STEP_MEMO_LIMIT);

/**
 * Reasons by reader and writer. Parsed schemas are kept (parseStored, and a long text's parse) and never changed, and
 * comparing two takes tens of milliseconds at the bounds (avsc resolving 3,990 fields: 11-30 ms): prepareSchemaRequest
 * compares them in a turn of its own, and the plan finds the reasons here.
 */
const explained = new WeakMap<ParsedSchema, WeakMap<ParsedSchema, readonly string[]>>();

/** Reasons data written with `writer` cannot be read with `reader`, whatever their format. */
export function explainSchemaIncompatibility(reader: ParsedSchema, writer: ParsedSchema): string[] {
  let byWriter = explained.get(reader);
  let reasons = byWriter?.get(writer);
  if (reasons === undefined) {
    reasons = explainNow(reader, writer);
    if (byWriter === undefined) explained.set(reader, (byWriter = new WeakMap()));
    byWriter.set(writer, reasons);
  }
  return [...reasons];
}

function explainNow(reader: ParsedSchema, writer: ParsedSchema): string[] {
  if (reader.schemaType === 'AVRO' && writer.schemaType === 'AVRO') return explainIncompatibility(reader.type, writer.type);
  if (reader.schemaType === 'JSON' && writer.schemaType === 'JSON') return explainJsonSchemaIncompatibility(reader.codec, writer.codec);
  if (reader.schemaType === 'PROTOBUF' && writer.schemaType === 'PROTOBUF') return explainProtobufIncompatibility(reader.file, writer.file);
  return [`(root): SCHEMA_TYPE_CHANGED: a ${reader.schemaType} schema cannot read ${writer.schemaType} data`];
}

const parsedCache = new Map<string, ParsedSchema>();
const PARSED_CACHE_LIMIT = 1000;

/** A stored version, parsed; cached by its text and its references' texts, since every check re-reads earlier versions. */
export function parseStored(state: RegistryState, entry: { schema: string; schemaType: string; references: readonly SchemaReference[] }): ParsedSchema {
  const schemaType = isSchemaType(entry.schemaType) ? entry.schemaType : 'AVRO';
  const resolved = resolveReferences(state, entry.references);
  const key = resolvedKey(schemaType, entry.schema, resolved);
  const cached = parsedCache.get(key);
  if (cached) return cached;
  const parsed = parseSchema(schemaType, entry.schema, resolved, true);
  if (parsedCache.size >= PARSED_CACHE_LIMIT) parsedCache.clear();
  parsedCache.set(key, parsed);
  return parsed;
}
