import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standaloneModule from 'ajv/dist/standalone/index.js';
import addFormatsModule from 'ajv-formats';
import { RE2JS } from 're2js';
import type { FieldViolation } from '../errors.ts';
import { parseJson, parseJsonText, stringifyJson } from '../json.ts';
import type { Codec, ResolvedSchema } from './types.ts';

/**
 * JSON Schema as a Confluent `JSON` schema: the body on the wire is the value's
 * UTF-8 JSON text (after the 5-byte header), validated with ajv. References
 * are added to the same ajv instance under their reference name, so a `$ref`
 * to that name (or to the referenced schema's `$id`) resolves to it.
 */

/** A JSON Schema as parsed JSON, with its references: what compatibility checks, rules and code generation read. */
export interface JsonSchemaDocument {
  /** The schema as parsed JSON. */
  readonly root: JsonSchemaNode;
  /** Referenced schemas by reference name and by `$id`. */
  readonly referenced: ReadonlyMap<string, JsonSchemaNode>;
}

export interface JsonSchemaCodec extends Codec, JsonSchemaDocument {
  readonly schemaType: 'JSON';
}

export type JsonSchemaNode = boolean | { [keyword: string]: unknown };

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const standaloneCode = standaloneModule as unknown as (ajv: Ajv, validate: ValidateFunction) => string;

/**
 * `pattern` and `patternProperties` run on every event the ingress validates, and a
 * schema's author chooses them: with the engine's backtracking RegExp, `(a+)+$` on a
 * few dozen characters holds the event loop for seconds. RE2 (re2js, pure JS) matches
 * in linear time; a pattern it cannot run (lookaround, backreferences) fails the
 * schema's compilation, so the registry refuses the schema (42201) instead of
 * accepting a pattern it could not bound.
 */
const linearRegExp: RegExpEngine = (pattern) => {
  const re = RE2JS.compile(pattern);
  // ajv caches compiled patterns by toString(): each needs its own.
  return { test: (input: string) => re.test(input), toString: () => `/${pattern}/u` };
};
linearRegExp.code = 'linearRegExp';

// `source` keeps the generated code, so the validator can be compiled on one thread and run on another.
const OPTIONS: Options = { allErrors: true, strict: false, verbose: true, code: { regExp: linearRegExp, source: true } };

function ajvFor(root: JsonSchemaNode): Ajv {
  const dialect = typeof root === 'object' && typeof root.$schema === 'string' ? root.$schema : '';
  const ajv = dialect.includes('2020-12') ? new Ajv2020(OPTIONS) : dialect.includes('2019-09') ? new Ajv2019(OPTIONS) : new Ajv(OPTIONS);
  addFormats(ajv);
  return ajv;
}

function parseNode(text: string, what: string): JsonSchemaNode {
  let node: unknown;
  try {
    node = parseJsonText(text);
  } catch (error) {
    throw new Error(`${what} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof node !== 'boolean' && (typeof node !== 'object' || node === null || Array.isArray(node))) throw new Error(`${what} must be a JSON object or boolean`);
  return node as JsonSchemaNode;
}

/** `/items/0/sku` → `items[0].sku`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

const join = (path: string, field: string): string => (path === '' ? field : `${path}.${field}`);

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function toViolation(error: ErrorObject): FieldViolation {
  const path = pointerToPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: join(path, String(params.missingProperty)), message: 'required field is missing' };
    case 'additionalProperties':
      return { path: join(path, String(params.additionalProperty)), message: 'unknown field (the schema allows no additional properties)' };
    case 'type':
      return { path, message: `expected ${String(params.type)}, got ${describeValue(error.data)}` };
    case 'enum':
      return { path, message: `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(error.data)}` };
    default:
      return { path, message: `${error.message ?? error.keyword}, got ${describeValue(error.data)}` };
  }
}

function hasBigInt(value: unknown): boolean {
  if (typeof value === 'bigint') return true;
  if (Array.isArray(value)) return value.some(hasBigInt);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(hasBigInt);
  return false;
}

/** Integers beyond 2^53 arrive as BigInts (core/json.ts keeps them exact); ajv checks their nearest double, which is still an integer. */
function forAjv(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(forAjv);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forAjv(v)]));
  return value;
}

const idOf = (node: JsonSchemaNode): string | undefined => (typeof node === 'object' && typeof node.$id === 'string' ? node.$id : undefined);

/** `name` resolved against a document's `$id` (`ref.json` under `https://acme.com/referrer.json` is `https://acme.com/ref.json`); undefined when either is no URL. */
function relativeTo(base: string | undefined, name: string): string | undefined {
  if (base === undefined) return undefined;
  try {
    const url = new URL(name, base).href;
    return url === name ? undefined : url;
  } catch {
    return undefined;
  }
}

/** The schema and its references parsed (linear in their text); nothing compiled. Throws when one is not JSON. */
export function jsonSchemaDocument(resolved: ResolvedSchema): JsonSchemaDocument {
  const root = parseNode(resolved.schema, 'the schema');
  const referenced = new Map<string, JsonSchemaNode>();
  for (const reference of resolved.references) {
    const node = parseNode(reference.schema, `referenced schema ${reference.name}`);
    const id = idOf(node);
    const alias = relativeTo(idOf(root), reference.name);
    referenced.set(reference.name, node);
    if (id !== undefined) referenced.set(id, node);
    if (alias !== undefined) referenced.set(alias, node);
  }
  return { root, referenced };
}

/**
 * The one place a JSON Schema is compiled: ajv's validator for `resolved`, as the source of a CommonJS module
 * (ajv's standalone code). Compiling takes time that grows faster than the schema (~0.5-3 s for 2,000
 * subschemas), so services run it off their event loop (json-schema-compiler.ts); the code it returns
 * is turned back into a function by `instantiateJsonValidator` in a few milliseconds. Throws when ajv
 * refuses the schema or a reference.
 */
export function jsonValidatorCode(resolved: ResolvedSchema): string {
  const root = parseNode(resolved.schema, 'the schema');
  const ajv = ajvFor(root);
  for (const reference of resolved.references) {
    const node = parseNode(reference.schema, `referenced schema ${reference.name}`);
    const id = idOf(node);
    // A schema with an $id registers under it; the reference name is added as a second key when it differs.
    if (ajv.getSchema(reference.name) === undefined) ajv.addSchema(node as object, id === reference.name ? undefined : reference.name);
    // A `$ref` by a name relative to the referring schema's `$id` (Confluent's own REST test: `ref.json` under `https://acme.com/referrer.json`).
    const alias = relativeTo(idOf(root), reference.name);
    if (alias !== undefined && alias !== id && ajv.getSchema(alias) === undefined) ajv.addSchema(node as object, alias);
  }
  return standaloneCode(ajv, ajv.compile(root as object));
}

const requireModule = createRequire(import.meta.url);
// What ajv's generated code may load: its own runtime helpers and ajv-formats' format checks.
const RUNTIME_MODULES = /^(ajv\/dist\/runtime\/[a-z0-9_]+|ajv-formats\/dist\/formats)$/;
const runtimeRequire = (name: string): unknown => {
  if (!RUNTIME_MODULES.test(name)) throw new Error(`generated validator code asked for module ${name}`);
  return requireModule(name);
};

/** A validator from `jsonValidatorCode`'s code: the patterns it holds compile with the same linear engine. */
export function instantiateJsonValidator(code: string): ValidateFunction {
  const module = { exports: {} as { default?: ValidateFunction } };
  // ajv's generated code, the same ajv.compile would have evaluated itself: values from the schema are escaped by its code generator.
  new Function('require', 'module', 'exports', linearRegExp.code, code)(runtimeRequire, module, module.exports, linearRegExp);
  const validate = module.exports.default;
  if (typeof validate !== 'function') throw new Error('generated validator code exports no function');
  return validate;
}

/** The codec of a parsed schema and its validator. */
export function jsonSchemaCodecOf(document: JsonSchemaDocument, validator: ValidateFunction): JsonSchemaCodec {
  return {
    schemaType: 'JSON',
    root: document.root,
    referenced: document.referenced,
    validate(value) {
      if (validator(hasBigInt(value) ? forAjv(value) : value)) return [];
      return (validator.errors ?? []).map(toViolation);
    },
    encode: (value) => Buffer.from(stringifyJson(value), 'utf8'),
    decode: (payload) => parseJson(payload.toString('utf8')),
  };
}

/**
 * Compiles on the calling thread: for the command line and start-up (the topology's own schema files,
 * before anything serves). A service compiling a schema it was sent uses json-schema-compiler.ts.
 */
export function jsonSchemaCodec(resolved: ResolvedSchema): JsonSchemaCodec {
  const document = jsonSchemaDocument(resolved);
  return jsonSchemaCodecOf(document, instantiateJsonValidator(jsonValidatorCode(resolved)));
}

/**
 * Follows `$ref`s from `node` (local pointers, references by name, by `$id`,
 * or by a name relative to the current document's `$id`), keeping track of
 * the document a node came from; at most 32 hops, so a cycle of bare `$ref`s ends.
 */
export function resolveJsonRef(codec: JsonSchemaDocument, docRoot: JsonSchemaNode, node: unknown): { node: unknown; docRoot: JsonSchemaNode } {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  let current = node;
  let root = docRoot;
  for (let hops = 0; isObj(current) && typeof current.$ref === 'string' && hops < 32; hops++) {
    const ref = current.$ref;
    const hash = ref.indexOf('#');
    const base = hash === -1 ? ref : ref.slice(0, hash);
    const pointer = hash === -1 ? '' : ref.slice(hash + 1);
    if (base !== '') {
      const relative = relativeTo(idOf(root), base);
      const target = codec.referenced.get(base) ?? (relative === undefined ? undefined : codec.referenced.get(relative));
      if (target === undefined) return { node: {}, docRoot: root };
      root = target;
    }
    let target: unknown = root;
    for (const raw of pointer.split('/')) {
      if (raw === '') continue;
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObj(target) ? target[part] : undefined;
    }
    current = target ?? {};
  }
  return { node: current, docRoot: root };
}
