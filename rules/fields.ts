import protobuf from 'protobufjs';
import type { Type as AvroType } from 'avsc';
import type { AnyCodec } from '../core/formats/index.ts';
import { resolveJsonRef, type JsonSchemaDocument, type JsonSchemaNode } from '../core/formats/json-schema.ts';
import type { ProtobufCodec } from '../core/formats/protobuf.ts';
import type { AvroCodec } from '../core/formats/avro.ts';
import type { Metadata } from './types.ts';
import { globMatcher } from './wildcard.ts';

/**
 * A schema's fields as `CEL_FIELD` rules see them, whatever the format:
 * Confluent's field model (full name, name, type name, tags) over a tree
 * built once per schema version. A rule walks only the part of the tree that
 * leads to fields it selects (by tag), so a rule over two tagged fields costs
 * two visits per event, not one per field of the schema.
 *
 * Full names are Confluent's: JSON Schema `$.customer.ssn`, Avro
 * `acme.Order.customer`, Protobuf `acme.Order.customer`. A field's tags are
 * its inline ones (`confluent:tags` in JSON Schema and Avro,
 * `(confluent.field_meta).tags` in Protobuf) plus those of every
 * `metadata.tags` glob its full name matches.
 */

export type FieldTypeName = 'RECORD' | 'ENUM' | 'ARRAY' | 'MAP' | 'COMBINED' | 'FIXED' | 'STRING' | 'BYTES' | 'INT' | 'LONG' | 'FLOAT' | 'DOUBLE' | 'BOOLEAN' | 'NULL';

/** The types a CEL_FIELD rule is given (Confluent's FieldContext.isPrimitive). */
const PRIMITIVE = new Set<FieldTypeName>(['STRING', 'BYTES', 'INT', 'LONG', 'FLOAT', 'DOUBLE', 'BOOLEAN', 'NULL']);

export interface FieldInfo {
  readonly fullName: string;
  readonly name: string;
  readonly tags: ReadonlySet<string>;
}

export type Shape =
  | { readonly kind: 'record'; fields: { readonly info: FieldInfo; shape: Shape }[] }
  | { readonly kind: 'array'; items: Shape }
  | { readonly kind: 'map'; values: Shape }
  | { readonly kind: 'union'; branches: { readonly accepts: (value: unknown) => boolean; readonly key?: string; shape: Shape }[] }
  | { readonly kind: 'all'; parts: Shape[] }
  | { readonly kind: 'leaf'; readonly type: FieldTypeName };

const SKIP: Shape = { kind: 'leaf', type: 'NULL' };

/**
 * Called on each leaf a walk reaches: the field it belongs to, its type, its value, the record holding the field, and
 * where it is (`items[2].sku`). Returns the field's new value (transforms) or throws (conditions). Positional rather
 * than one object per visit: a CEL_FIELD condition over two fields made two objects per event for nothing.
 */
export type FieldVisitor = (field: FieldInfo, type: FieldTypeName, value: unknown, container: unknown, path: string) => unknown;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const childPath = (path: string, name: string): string => (path === '' ? name : `${path}.${name}`);

/** Walks `value` along `shape`, calling `visit` on each primitive leaf inside a field; replaces values when `write`. */
export function walkFields(shape: Shape, value: unknown, visit: FieldVisitor, write: boolean): unknown {
  return walkAt(shape, value, undefined, undefined, '', visit, write);
}

function walkAt(s: Shape, v: unknown, field: FieldInfo | undefined, container: unknown, path: string, visit: FieldVisitor, write: boolean): unknown {
  if (v === null || v === undefined) return v;
  switch (s.kind) {
    case 'record': {
      if (!isObject(v)) return v;
      for (const f of s.fields) {
        const current = v[f.info.name];
        if (current === null || current === undefined) continue;
        const next = walkAt(f.shape, current, f.info, v, childPath(path, f.info.name), visit, write);
        if (write) v[f.info.name] = next;
      }
      return v;
    }
    case 'array':
      if (!Array.isArray(v)) return v;
      for (let i = 0; i < v.length; i++) {
        const next = walkAt(s.items, v[i], field, container, `${path}[${i}]`, visit, write);
        if (write) v[i] = next;
      }
      return v;
    case 'map':
      if (!isObject(v)) return v;
      for (const key of Object.keys(v)) {
        const next = walkAt(s.values, v[key], field, container, childPath(path, key), visit, write);
        if (write) v[key] = next;
      }
      return v;
    case 'union':
      for (const branch of s.branches) {
        if (branch.key !== undefined) {
          // An Avro wrapped union: {"string": "..."}.
          if (!isObject(v) || !(branch.key in v)) continue;
          const next = walkAt(branch.shape, v[branch.key], field, container, path, visit, write);
          if (write) v[branch.key] = next;
          return v;
        }
        if (branch.accepts(v)) return walkAt(branch.shape, v, field, container, path, visit, write);
      }
      return v;
    case 'all': {
      let out: unknown = v;
      for (const part of s.parts) out = walkAt(part, out, field, container, path, visit, write);
      return out;
    }
    case 'leaf':
      if (field === undefined || !PRIMITIVE.has(s.type)) return v;
      return visit(field, s.type, v, container, path);
  }
}

/** Walks a value along one shape: `walkFields` with the shape fixed. */
export type FieldWalk = (value: unknown, visit: FieldVisitor, write: boolean) => unknown;

/** One field a flat walk reaches through records only: the names leading to its record, and what it holds. */
interface FieldAccessor {
  readonly parents: readonly string[];
  readonly info: FieldInfo;
  readonly shape: Shape;
  readonly path: string;
  /**
   * When the field is a leaf, or a union of leaves (a nullable string): per branch, what accepts it and the type
   * visited (undefined: a branch that visits nothing), so the walk visits it without walkAt's dispatch.
   */
  readonly leaves: readonly { readonly accepts: ((value: unknown) => boolean) | undefined; readonly type: FieldTypeName | undefined }[] | undefined;
}

/** What `walkAt` does with a leaf shape: visit it when it is a primitive, else nothing. */
const leafType = (s: Shape): FieldTypeName | undefined => (s.kind === 'leaf' && PRIMITIVE.has(s.type) ? s.type : undefined);

/** The `leaves` of an accessor: a leaf is one branch accepting anything; a union qualifies when no branch is wrapped or nested. */
function leavesOf(s: Shape): FieldAccessor['leaves'] {
  if (s.kind === 'leaf') return [{ accepts: undefined, type: leafType(s) }];
  if (s.kind !== 'union' || !s.branches.every((b) => b.key === undefined && b.shape.kind === 'leaf')) return undefined;
  return s.branches.map((b) => ({ accepts: b.accepts, type: leafType(b.shape) }));
}

/** Past this many fields, a flat list saves nothing over the tree walk. */
const MAX_ACCESSORS = 256;

/** The fields of `shape` reached through records alone (a single-part `all` is its part), in walk order; undefined when an array, map, union or cycle stands between. */
function flatten(shape: Shape): FieldAccessor[] | undefined {
  const out: FieldAccessor[] = [];
  const onPath = new Set<Shape>();
  const unwrap = (s: Shape): Shape => (s.kind === 'all' && s.parts.length === 1 ? unwrap(s.parts[0]!) : s);
  const visit = (s: Shape, parents: string[], path: string): boolean => {
    const record = unwrap(s);
    if (record.kind !== 'record' || onPath.has(record)) return false;
    onPath.add(record);
    for (const f of record.fields) {
      const inner = unwrap(f.shape);
      const fieldPath = childPath(path, f.info.name);
      if (inner.kind === 'record') {
        if (!visit(inner, [...parents, f.info.name], fieldPath)) return false;
      } else {
        // A leaf or what leads to one (a nullable union, a list): the tree walk takes it from here, from its record.
        out.push({ parents, info: f.info, shape: f.shape, path: fieldPath, leaves: leavesOf(f.shape) });
        if (out.length > MAX_ACCESSORS) return false;
      }
    }
    onPath.delete(record);
    return true;
  };
  return visit(shape, [], '') ? out : undefined;
}

/** How many generated walks: each one's number is in its first line, so a profile tells them apart. */
let generatedWalks = 0;

/**
 * `walkFields` over `shape`, prepared once per rule: when the selected fields
 * sit in nested records (the usual case: a few tagged fields), one generated
 * function that goes straight to each of them (the record names leading to
 * it, its path, its union's branches, all fixed), else the tree walk. Same
 * visits, in the same order, with the same writes.
 *
 * Why generated: the accessor list walked in a loop (the parents, the union's
 * branches, an object per visit) was half of a CEL_FIELD condition's cost on
 * two tagged fields. Safety as in cel-codegen.ts: no name from the schema
 * enters the source; field names, paths, infos, types and the branches'
 * checks are constants read as `k[i]`.
 */
export function compileWalk(shape: Shape): FieldWalk {
  const accessors = flatten(shape);
  if (accessors === undefined) return (value, visit, write) => walkFields(shape, value, visit, write);
  const k: unknown[] = [];
  const constant = (value: unknown): string => `k[${k.push(value) - 1}]`;
  const blocks = accessors.map((a, i) => {
    const label = `a${i}`;
    const name = constant(a.info.name);
    // Down the records to the field's own: a parent that is not a record ends this field's visit (walkAt's isObject).
    const descend = a.parents.map((parent) => `c = r[${constant(parent)}]; if (!O(c)) break ${label}; r = c;\n`).join('');
    const visit = (type: FieldTypeName) => `n = visit(${constant(a.info)}, ${constant(type)}, c, r, ${constant(a.path)}); if (write) r[${name}] = n;\n`;
    let body: string;
    if (a.leaves === undefined) {
      body = `n = W(${constant(a.shape)}, c, ${constant(a.info)}, r, ${constant(a.path)}, visit, write); if (write) r[${name}] = n;\n`;
    } else {
      // walkAt's leaf and union cases: the first branch that accepts the value decides (a branch that accepts anything ends the list).
      body = '';
      for (const leaf of a.leaves) {
        const then = `${leaf.type === undefined ? '' : visit(leaf.type)}break ${label};\n`;
        if (leaf.accepts === undefined) {
          body += then;
          break;
        }
        body += `if (${constant(leaf.accepts)}(c)) { ${then}}\n`;
      }
    }
    return `${label}: {\nr = value;\n${descend}c = r[${name}];\nif (c === null || c === undefined) break ${label};\n${body}}\n`;
  });
  const source = `// walk ${++generatedWalks}\nreturn function walk(value, visit, write) {\nif (!O(value)) return value;\nlet r, c, n;\n${blocks.join('')}return value;\n};`;
  const make = new Function('k', 'O', 'W', source) as (k: readonly unknown[], isObject: (v: unknown) => boolean, walk: typeof walkAt) => FieldWalk;
  return make(Object.freeze(k), isObject, walkAt);
}

/**
 * The part of `shape` that leads to fields `selects` accepts; undefined when
 * none does (the rule then never walks). Recursive schemas keep their cycles.
 */
export function pruneShape(shape: Shape, selects: (field: FieldInfo) => boolean): Shape | undefined {
  const memo = new Map<Shape, Shape | undefined | 'pending'>();
  const prune = (s: Shape, field: FieldInfo | undefined): Shape | undefined => {
    const known = memo.get(s);
    // A cycle back to a shape still being pruned: keep it, it may lead somewhere.
    if (known === 'pending') return s;
    // A record's pruning does not depend on the field around it (its fields bring their own): pruned once.
    if (s.kind === 'record' && memo.has(s)) return known as Shape | undefined;
    memo.set(s, 'pending');
    let out: Shape | undefined;
    switch (s.kind) {
      case 'leaf':
        out = field !== undefined && PRIMITIVE.has(s.type) && selects(field) ? s : undefined;
        break;
      case 'record': {
        const fields = s.fields.flatMap((f) => {
          const inner = prune(f.shape, f.info);
          return inner ? [{ info: f.info, shape: inner }] : [];
        });
        out = fields.length > 0 ? { kind: 'record', fields } : undefined;
        break;
      }
      case 'array': {
        const items = prune(s.items, field);
        out = items ? { kind: 'array', items } : undefined;
        break;
      }
      case 'map': {
        const values = prune(s.values, field);
        out = values ? { kind: 'map', values } : undefined;
        break;
      }
      case 'union': {
        // Branch order decides which branch a value takes: keep every branch, pruned ones as leaves that visit nothing.
        const branches = s.branches.map((b) => ({ ...b, shape: prune(b.shape, field) ?? SKIP }));
        out = branches.some((b) => b.shape !== SKIP) ? { kind: 'union', branches } : undefined;
        break;
      }
      case 'all': {
        const parts = s.parts.flatMap((p) => {
          const inner = prune(p, field);
          return inner ? [inner] : [];
        });
        out = parts.length > 0 ? { kind: 'all', parts } : undefined;
        break;
      }
    }
    if (s.kind === 'record') memo.set(s, out);
    else memo.delete(s);
    return out;
  };
  return prune(shape, undefined);
}

// ---- tags ----

type TagsOf = (fullName: string, inline: readonly string[]) => ReadonlySet<string>;

function tagResolver(metadata: Metadata | undefined): TagsOf {
  const globs = Object.entries(metadata?.tags ?? {}).map(([glob, tags]) => ({ matches: globMatcher(glob), tags }));
  return (fullName, inline) => {
    const out = new Set(inline);
    for (const g of globs) if (g.matches(fullName)) for (const t of g.tags) out.add(t);
    return out;
  };
}

const inlineTags = (node: unknown): string[] => {
  const tags = isObject(node) ? node['confluent:tags'] : undefined;
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
};

// ---- JSON Schema ----

/** Bound on a JSON Schema's field tree (a schema of 10,000 nodes is far past any real one; a crafted one stops here). */
const MAX_JSON_NODES = 10_000;

function jsonShape(codec: JsonSchemaDocument, tagsOf: TagsOf): Shape {
  let budget = MAX_JSON_NODES;
  const resolve = (node: unknown, root: JsonSchemaNode): { node: unknown; root: JsonSchemaNode } => {
    const out = resolveJsonRef(codec, root, node);
    return { node: out.node, root: out.docRoot };
  };
  // Shapes on the current path by schema node: a recursive $ref reuses its ancestor's shape.
  const onPath = new Map<unknown, Shape>();
  const build = (raw: unknown, root: JsonSchemaNode, fullName: string): Shape => {
    if (--budget < 0) return SKIP;
    const { node, root: docRoot } = resolve(raw, root);
    if (!isObject(node)) return SKIP;
    const ancestor = onPath.get(node);
    if (ancestor) return ancestor;
    const parts: Shape[] = [];
    const shape: Shape = { kind: 'all', parts };
    onPath.set(node, shape);
    try {
      if (Array.isArray(node.type) && node.type.length > 0) {
        const branches = node.type.map((t) => ({ accepts: (v: unknown) => jsonTypeAccepts(String(t), v), shape: build({ ...node, type: t }, docRoot, fullName) }));
        parts.push({ kind: 'union', branches });
        return shape;
      }
      for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
        const subs = node[key];
        if (!Array.isArray(subs) || subs.length === 0) continue;
        const built = subs.map((sub) => ({ accepts: (v: unknown) => roughlyAccepts(resolve(sub, docRoot).node, v), shape: build(sub, docRoot, fullName) }));
        // allOf: every part; oneOf: the first that fits; anyOf: every part that fits (Confluent's transform).
        if (key === 'oneOf') parts.push({ kind: 'union', branches: built });
        else for (const b of built) parts.push(key === 'allOf' ? b.shape : { kind: 'union', branches: [b] });
      }
      const type = jsonType(node);
      if (isObject(node.properties)) {
        const fields = Object.entries(node.properties).map(([name, prop]) => {
          const full = `${fullName}.${name}`;
          const target = resolve(prop, docRoot).node;
          return { info: { fullName: full, name, tags: tagsOf(full, [...inlineTags(prop), ...inlineTags(target)]) }, shape: build(prop, docRoot, full) };
        });
        parts.push({ kind: 'record', fields });
      } else if (isObject(node.items) || node.items === true) {
        parts.push({ kind: 'array', items: build(node.items, docRoot, fullName) });
      } else if (type !== 'RECORD' && type !== 'MAP' && type !== 'ARRAY') {
        parts.push({ kind: 'leaf', type });
      }
      return shape;
    } finally {
      onPath.delete(node);
    }
  };
  return build(codec.root, codec.root, '$');
}

function jsonType(node: Record<string, unknown>): FieldTypeName {
  if (node.type === undefined) return isObject(node.properties) && Object.keys(node.properties).length > 0 ? 'RECORD' : 'NULL';
  if ('const' in node || Array.isArray(node.enum)) return 'ENUM';
  switch (node.type) {
    case 'object':
      return isObject(node.properties) && Object.keys(node.properties).length > 0 ? 'RECORD' : 'MAP';
    case 'array':
      return 'ARRAY';
    case 'string':
      return 'STRING';
    case 'integer':
      return 'INT';
    case 'number':
      return 'DOUBLE';
    case 'boolean':
      return 'BOOLEAN';
    default:
      return 'NULL';
  }
}

function jsonTypeAccepts(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
    case 'number':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    default:
      return false;
  }
}

/** Which oneOf/anyOf branch a value takes: its type, enum/const and required properties (Confluent validates each branch; this is the structural part of that). */
function roughlyAccepts(node: unknown, v: unknown): boolean {
  if (node === true) return true;
  if (!isObject(node)) return false;
  if (typeof node.type === 'string' && !jsonTypeAccepts(node.type, v)) return false;
  if (Array.isArray(node.type) && !node.type.some((t) => jsonTypeAccepts(String(t), v))) return false;
  if ('const' in node && JSON.stringify(node.const) !== JSON.stringify(v)) return false;
  if (Array.isArray(node.enum) && !node.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) return false;
  if (Array.isArray(node.required) && isObject(v) && !node.required.every((k) => typeof k === 'string' && k in v)) return false;
  return true;
}

// ---- Avro ----

/** Inline `confluent:tags` of each record field, by `<record full name>.<field>`, read from the schema JSON (avsc keeps no custom attributes). */
function avroInlineTags(schema: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const visit = (node: unknown, namespace: string): void => {
    if (Array.isArray(node)) return node.forEach((n) => visit(n, namespace));
    if (!isObject(node)) return;
    const name = typeof node.name === 'string' ? node.name : undefined;
    const ns = typeof node.namespace === 'string' ? node.namespace : namespace;
    const full = name === undefined ? undefined : name.includes('.') || ns === '' ? name : `${ns}.${name}`;
    const inner = full !== undefined && full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : ns;
    if (node.type === 'record' || node.type === 'error') {
      for (const f of Array.isArray(node.fields) ? node.fields : []) {
        if (!isObject(f)) continue;
        const tags = inlineTags(f);
        if (tags.length > 0 && full !== undefined) out.set(`${full}.${String(f.name)}`, tags);
        visit(f.type, inner);
      }
    }
    if (node.items !== undefined) visit(node.items, inner);
    if (node.values !== undefined) visit(node.values, inner);
    if (isObject(node.type) || Array.isArray(node.type)) visit(node.type, inner);
  };
  visit(schema, '');
  return out;
}

const AVRO_LEAVES: Record<string, FieldTypeName> = {
  string: 'STRING',
  bytes: 'BYTES',
  int: 'INT',
  long: 'LONG',
  'abstract:long': 'LONG',
  float: 'FLOAT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  null: 'NULL',
  enum: 'ENUM',
  fixed: 'FIXED',
};

interface AvsType extends AvroType {
  readonly fields?: { name: string; type: AvsType }[];
  readonly itemsType?: AvsType;
  readonly valuesType?: AvsType;
  readonly types?: AvsType[];
  readonly underlyingType?: AvsType;
}

function avroShape(codec: AvroCodec, tagsOf: TagsOf): Shape {
  const inline = avroInlineTags(codec.types.schema);
  const records = new Map<AvroType, Shape>();
  const build = (type: AvsType): Shape => {
    const name = type.typeName;
    if (name === 'record' || name === 'error') {
      const known = records.get(type);
      if (known) return known;
      const fields: { info: FieldInfo; shape: Shape }[] = [];
      const shape: Shape = { kind: 'record', fields };
      records.set(type, shape);
      for (const f of type.fields ?? []) {
        const full = `${type.name}.${f.name}`;
        fields.push({ info: { fullName: full, name: f.name, tags: tagsOf(full, inline.get(full) ?? []) }, shape: build(f.type) });
      }
      return shape;
    }
    if (name === 'array') return { kind: 'array', items: build(type.itemsType!) };
    if (name === 'map') return { kind: 'map', values: build(type.valuesType!) };
    if (name === 'union:unwrapped') return { kind: 'union', branches: (type.types ?? []).map((t) => ({ accepts: (v: unknown) => t.isValid(v), shape: build(t) })) };
    if (name === 'union:wrapped') return { kind: 'union', branches: (type.types ?? []).map((t) => ({ accepts: () => false, key: t.branchName ?? t.typeName, shape: build(t) })) };
    if (name.startsWith('logical:') && type.underlyingType) return build(type.underlyingType);
    return { kind: 'leaf', type: AVRO_LEAVES[name] ?? 'NULL' };
  };
  return build(codec.types.wide as AvsType);
}

// ---- Protobuf ----

const PROTO_SCALARS: Record<string, FieldTypeName> = {
  string: 'STRING',
  bytes: 'BYTES',
  int32: 'INT',
  sint32: 'INT',
  uint32: 'INT',
  fixed32: 'INT',
  sfixed32: 'INT',
  int64: 'LONG',
  sint64: 'LONG',
  uint64: 'LONG',
  fixed64: 'LONG',
  sfixed64: 'LONG',
  float: 'FLOAT',
  double: 'DOUBLE',
  bool: 'BOOLEAN',
};

/** `[(confluent.field_meta).tags = "PII"]` or `[(confluent.field_meta) = { tags: ["PII"] }]`. */
function protoInlineTags(field: protobuf.Field): string[] {
  const out: string[] = [];
  for (const option of (field as { parsedOptions?: Record<string, unknown>[] }).parsedOptions ?? []) {
    const meta = option['(confluent.field_meta)'];
    const tags = isObject(meta) ? meta.tags : undefined;
    if (typeof tags === 'string') out.push(tags);
    else if (Array.isArray(tags)) out.push(...tags.filter((t): t is string => typeof t === 'string'));
  }
  return out;
}

function protobufShape(codec: ProtobufCodec, tagsOf: TagsOf): Shape {
  const messages = new Map<protobuf.Type, Shape>();
  const build = (type: protobuf.Type): Shape => {
    const known = messages.get(type);
    if (known) return known;
    const fields: { info: FieldInfo; shape: Shape }[] = [];
    const shape: Shape = { kind: 'record', fields };
    messages.set(type, shape);
    const typeName = type.fullName.replace(/^\./, '');
    for (const f of type.fieldsArray) {
      const full = `${typeName}.${f.name}`;
      const resolved = f.resolvedType;
      let inner: Shape =
        resolved instanceof protobuf.Type ? build(resolved) : resolved instanceof protobuf.Enum ? { kind: 'leaf', type: 'ENUM' } : { kind: 'leaf', type: PROTO_SCALARS[f.type] ?? 'NULL' };
      if (f instanceof protobuf.MapField) inner = { kind: 'map', values: inner };
      else if (f.repeated) inner = { kind: 'array', items: inner };
      fields.push({ info: { fullName: full, name: f.name, tags: tagsOf(full, protoInlineTags(f)) }, shape: inner });
    }
    return shape;
  };
  const first = codec.file.messages[0];
  return first ? build(first) : SKIP;
}

/** The field tree of a schema version, its tags resolved against the version's metadata. */
export function fieldShape(codec: AnyCodec, metadata: Metadata | undefined): Shape {
  const tagsOf = tagResolver(metadata);
  switch (codec.schemaType) {
    case 'JSON':
      return jsonShape(codec, tagsOf);
    case 'AVRO':
      return avroShape(codec, tagsOf);
    case 'PROTOBUF':
      return protobufShape(codec, tagsOf);
  }
}
