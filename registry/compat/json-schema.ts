import { RE2JS } from 're2js';
import { resolveJsonRef, type JsonSchemaDocument, type JsonSchemaNode } from '../../core/formats/json-schema.ts';

/**
 * JSON Schema compatibility as Confluent defines it: a reader schema can read
 * what a writer schema wrote when it accepts every document the writer
 * accepts. Confluent's checker diffs the two schemas keyword by keyword and
 * allows only the changes that widen what is accepted; this walk does the
 * same and names each disallowed change with Confluent's difference type
 * (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL, TYPE_NARROWED, ...) and the path.
 *
 * Content models decide what adding or removing a property means: an open
 * model (`additionalProperties` absent or true) may already hold any value
 * under a new property's name, so adding a typed property to it is refused;
 * a closed model (`false`) cannot, so adding an optional property is fine but
 * removing one is refused; a partially open model (`additionalProperties` a
 * schema) allows the change when that schema covers the property.
 */

type Obj = { [keyword: string]: unknown };

interface Side {
  doc: JsonSchemaDocument;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmptySchema = (node: unknown): boolean => node === true || node === undefined || (isObj(node) && Object.keys(node).filter((k) => !ANNOTATIONS.has(k)).length === 0);
const ANNOTATIONS = new Set(['title', 'description', '$comment', 'examples', 'default', '$id', '$schema', 'readOnly', 'writeOnly', 'deprecated']);

function child(path: string, part: string): string {
  return path === '' ? part : part.startsWith('[') ? `${path}${part}` : `${path}.${part}`;
}
const at = (path: string): string => (path === '' ? '(root)' : path);

function typesOf(node: Obj): Set<string> | undefined {
  if (typeof node.type === 'string') return new Set([node.type]);
  if (Array.isArray(node.type)) return new Set(node.type.filter((t): t is string => typeof t === 'string'));
  return undefined;
}

export class JsonSchemaCompatibility {
  readonly #reader: Side;
  readonly #writer: Side;
  readonly #out: string[] = [];
  /** (writer node, reader node) pairs under comparison: recursive schemas are compared once. */
  readonly #seen = new Map<unknown, Set<unknown>>();

  constructor(reader: JsonSchemaDocument, writer: JsonSchemaDocument) {
    this.#reader = { doc: reader };
    this.#writer = { doc: writer };
  }

  /** Reasons the reader cannot read the writer's documents; empty when it can. */
  run(): string[] {
    this.#compare(this.#writer.doc.root, this.#writer.doc.root, this.#reader.doc.root, this.#reader.doc.root, '');
    return this.#out;
  }

  #report(path: string, code: string, detail: string): void {
    this.#out.push(`${at(path)}: ${code}: ${detail}`);
  }

  #resolve(side: Side, docRoot: JsonSchemaNode, node: unknown): { node: unknown; docRoot: JsonSchemaNode } {
    return resolveJsonRef(side.doc, docRoot, node);
  }

  #compare(writerRoot: JsonSchemaNode, writerIn: unknown, readerRoot: JsonSchemaNode, readerIn: unknown, path: string): void {
    const w = this.#resolve(this.#writer, writerRoot, writerIn);
    const r = this.#resolve(this.#reader, readerRoot, readerIn);
    const writer = w.node === true || w.node === undefined ? {} : w.node;
    const reader = r.node === true || r.node === undefined ? {} : r.node;
    if (writer === false || isEmptySchema(reader)) return;
    if (reader === false) return this.#report(path, 'SCHEMA_REMOVED', 'the reader accepts nothing (false) where the writer accepts values');
    if (!isObj(writer) || !isObj(reader)) return;
    let seen = this.#seen.get(writer);
    if (seen?.has(reader)) return;
    if (!seen) this.#seen.set(writer, (seen = new Set()));
    seen.add(reader);
    const ctx: Pair = { writerRoot: w.docRoot, writer, readerRoot: r.docRoot, reader, path };
    if (this.#compareCombined(ctx)) return;
    if (!this.#compareType(ctx)) return;
    this.#compareEnum(ctx);
    this.#compareBounds(ctx);
    this.#compareNot(ctx);
    this.#compareObject(ctx);
    this.#compareDependencies(ctx);
    this.#compareArray(ctx);
  }

  /** Whether `writer` ⊆ `reader` with no reported differences (used to pick union branches). */
  compatible(writerRoot: JsonSchemaNode, writer: unknown, readerRoot: JsonSchemaNode, reader: unknown): boolean {
    const probe = new JsonSchemaCompatibility(this.#reader.doc, this.#writer.doc);
    probe.#compare(writerRoot, writer, readerRoot, reader, '');
    return probe.#out.length === 0;
  }

  compareChild(ctx: Pair, writer: unknown, reader: unknown, path: string): void {
    this.#compare(ctx.writerRoot, writer, ctx.readerRoot, reader, path);
  }

  /** oneOf/anyOf (sum types) and allOf (product types); true when the node was fully handled. */
  #compareCombined(ctx: Pair): boolean {
    const { writer, reader, path } = ctx;
    const sumOf = (n: Obj): unknown[] | undefined => (Array.isArray(n.anyOf) ? n.anyOf : Array.isArray(n.oneOf) ? n.oneOf : undefined);
    const wSum = sumOf(writer);
    const rSum = sumOf(reader);
    const rAll = Array.isArray(reader.allOf) ? reader.allOf : undefined;
    const wAll = Array.isArray(writer.allOf) ? writer.allOf : undefined;
    if (!wSum && !rSum && !rAll && !wAll) return false;
    if (rSum) {
      // Only a writer with several branches can have written a document matching more than one.
      if (wSum && wSum.length > 1 && Array.isArray(writer.anyOf) && Array.isArray(reader.oneOf)) {
        this.#report(path, 'COMPOSITION_METHOD_CHANGED', 'anyOf became oneOf: a document matching several branches is no longer accepted');
      }
      const branches = wSum ?? [writer];
      branches.forEach((branch, i) => {
        if (!rSum.some((candidate) => this.compatible(ctx.writerRoot, branch, ctx.readerRoot, candidate))) {
          const where = wSum ? child(path, `${Array.isArray(writer.anyOf) ? 'anyOf' : 'oneOf'}[${i}]`) : path;
          this.#report(where, rSum.length < branches.length ? 'SUM_TYPE_NARROWED' : 'COMBINED_TYPE_SUBSCHEMAS_CHANGED', 'no branch of the reader accepts what this writer branch accepts');
        }
      });
      return true;
    }
    if (wSum) {
      // The reader is a single schema: it must accept every branch the writer may have used.
      wSum.forEach((branch, i) => this.compareChild(ctx, branch, reader, child(path, `${Array.isArray(writer.anyOf) ? 'anyOf' : 'oneOf'}[${i}]`)));
      return true;
    }
    const wParts = wAll ?? [writer];
    const rParts = rAll ?? [reader];
    const distinct = (parts: unknown[]): number => new Set(parts.map((p) => JSON.stringify(p))).size;
    if (rAll && wAll && distinct(rAll) > distinct(wAll)) {
      this.#report(path, 'PRODUCT_TYPE_EXTENDED', `allOf grew from ${distinct(wAll)} to ${distinct(rAll)} distinct subschemas: documents must now satisfy more`);
    }
    rParts.forEach((part, i) => {
      if (!wParts.some((candidate) => this.compatible(ctx.writerRoot, candidate, ctx.readerRoot, part))) {
        this.#report(rAll ? child(path, `allOf[${i}]`) : path, 'COMBINED_TYPE_SUBSCHEMAS_CHANGED', 'this reader subschema constrains what no writer subschema guaranteed');
      }
    });
    return true;
  }

  /** Type keyword; false when the types differ so much that comparing further keywords is noise. */
  #compareType({ writer, reader, path }: Pair): boolean {
    const rTypes = typesOf(reader);
    if (!rTypes) return true;
    const wTypes = typesOf(writer);
    if (!wTypes) {
      this.#report(path, 'TYPE_NARROWED', `the reader requires type ${[...rTypes].join(' | ')}; the writer allowed any type`);
      return false;
    }
    const missing = [...wTypes].filter((t) => !rTypes.has(t) && !(t === 'integer' && rTypes.has('number')));
    if (missing.length === 0) return true;
    const narrowed = [...rTypes].every((t) => wTypes.has(t) || (t === 'integer' && wTypes.has('number')));
    this.#report(path, narrowed ? 'TYPE_NARROWED' : 'TYPE_CHANGED', `writer type ${[...wTypes].join(' | ')}, reader type ${[...rTypes].join(' | ')} (only integer → number widens)`);
    return false;
  }

  #compareEnum({ writer, reader, path }: Pair): void {
    const rValues = Array.isArray(reader.enum) ? reader.enum : 'const' in reader ? [reader.const] : undefined;
    if (!rValues) return;
    const wValues = Array.isArray(writer.enum) ? writer.enum : 'const' in writer ? [writer.const] : undefined;
    if (!wValues) return this.#report(path, 'ENUM_ARRAY_NARROWED', 'the reader restricts values to an enum the writer did not have');
    const key = (v: unknown): string => JSON.stringify(v);
    const allowed = new Set(rValues.map(key));
    const missing = wValues.filter((v) => !allowed.has(key(v)));
    if (missing.length > 0) this.#report(path, 'ENUM_ARRAY_NARROWED', `the reader's enum lacks ${missing.map(key).join(', ')}`);
  }

  #compareBounds({ writer, reader, path }: Pair): void {
    const num = (n: Obj, k: string): number | undefined => (typeof n[k] === 'number' ? n[k] : undefined);
    const upper: [string, string][] = [
      ['maxLength', 'MAX_LENGTH'],
      ['maximum', 'MAXIMUM'],
      ['exclusiveMaximum', 'EXCLUSIVE_MAXIMUM'],
      ['maxItems', 'MAX_ITEMS'],
      ['maxProperties', 'MAX_PROPERTIES'],
      ['maxContains', 'MAX_CONTAINS'],
    ];
    const lower: [string, string][] = [
      ['minLength', 'MIN_LENGTH'],
      ['minimum', 'MINIMUM'],
      ['exclusiveMinimum', 'EXCLUSIVE_MINIMUM'],
      ['minItems', 'MIN_ITEMS'],
      ['minProperties', 'MIN_PROPERTIES'],
      ['minContains', 'MIN_CONTAINS'],
    ];
    for (const [keyword, code] of upper) {
      const r = num(reader, keyword);
      const w = num(writer, keyword);
      if (r === undefined) continue;
      if (w === undefined) this.#report(path, `${code}_ADDED`, `the reader adds ${keyword} ${r}`);
      else if (r < w) this.#report(path, `${code}_DECREASED`, `${keyword} decreased from ${w} to ${r}`);
    }
    for (const [keyword, code] of lower) {
      const r = num(reader, keyword);
      const w = num(writer, keyword);
      if (r === undefined || (w === undefined && r <= 0)) continue;
      if (w === undefined) this.#report(path, `${code}_ADDED`, `the reader adds ${keyword} ${r}`);
      else if (r > w) this.#report(path, `${code}_INCREASED`, `${keyword} increased from ${w} to ${r}`);
    }
    const rMult = num(reader, 'multipleOf');
    if (rMult !== undefined) {
      const wMult = num(writer, 'multipleOf');
      if (wMult === undefined) this.#report(path, 'MULTIPLE_OF_ADDED', `the reader adds multipleOf ${rMult}`);
      else if (wMult % rMult !== 0) this.#report(path, 'MULTIPLE_OF_CHANGED', `multipleOf ${wMult} is not a multiple of the reader's ${rMult}`);
    }
    if (typeof reader.pattern === 'string' && reader.pattern !== writer.pattern) {
      this.#report(path, typeof writer.pattern === 'string' ? 'PATTERN_CHANGED' : 'PATTERN_ADDED', `the reader requires pattern ${reader.pattern}`);
    }
    if (reader.uniqueItems === true && writer.uniqueItems !== true) this.#report(path, 'UNIQUE_ITEMS_ADDED', 'the reader requires unique items');
  }

  #compareObject(ctx: Pair): void {
    const { writer, reader, path } = ctx;
    const has = (n: Obj): boolean => isObj(n.properties) || Array.isArray(n.required) || 'additionalProperties' in n || typesOf(n)?.has('object') === true;
    if (!has(writer) && !has(reader)) return;
    const wProps = isObj(writer.properties) ? writer.properties : {};
    const rProps = isObj(reader.properties) ? reader.properties : {};
    const wRequired = new Set(Array.isArray(writer.required) ? (writer.required as string[]) : []);
    const rRequired = new Set(Array.isArray(reader.required) ? (reader.required as string[]) : []);
    const wModel = contentModel(writer);
    const rModel = contentModel(reader);

    for (const [name, rProp] of Object.entries(rProps)) {
      const where = child(path, name);
      if (name in wProps) {
        this.compareChild(ctx, wProps[name], rProp, where);
        if (rRequired.has(name) && !wRequired.has(name) && !hasDefault(rProp)) this.#report(where, 'REQUIRED_ATTRIBUTE_ADDED', `'${name}' became required; the writer's documents may lack it`);
        continue;
      }
      if (wModel === 'open') {
        if (!isEmptySchema(rProp))
          this.#report(
            where,
            'PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
            `property '${name}' added while the writer's content model is open: earlier documents may hold any value under '${name}' (close the writer's model with additionalProperties: false first)`,
          );
        continue;
      }
      if (rRequired.has(name) && !hasDefault(rProp)) {
        this.#report(where, 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', `required property '${name}' added without a default; the writer's documents lack it`);
        continue;
      }
      if (wModel === 'partial' && !this.compatible(ctx.writerRoot, coveringSchema(writer, name), ctx.readerRoot, rProp)) {
        this.#report(where, 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', `property '${name}' does not accept everything the writer's additionalProperties allowed`);
      }
    }
    for (const [name, wProp] of Object.entries(wProps)) {
      if (name in rProps) continue;
      const where = child(path, name);
      // A property the writer declared `false` never held a value (PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL).
      if (wProp === false) continue;
      const covering = coveringSchema(reader, name);
      if (covering !== undefined && covering !== reader.additionalProperties && covering !== reader.unevaluatedProperties) {
        // A patternProperties entry of the reader takes the removed property over.
        if (!this.compatible(ctx.writerRoot, wProp, ctx.readerRoot, covering))
          this.#report(where, 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', `removed property '${name}' is not accepted by the reader's patternProperties`);
      } else if (rModel === 'closed') {
        this.#report(where, 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL', `property '${name}' removed while the reader's content model is closed: the writer's documents may still hold it`);
      } else if (rModel === 'partial' && !this.compatible(ctx.writerRoot, wProp, ctx.readerRoot, covering)) {
        this.#report(where, 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL', `removed property '${name}' is not accepted by the reader's additionalProperties`);
      }
    }
    if (wModel === 'open' && rModel === 'closed')
      this.#report(path, 'ADDITIONAL_PROPERTIES_REMOVED', 'the reader closed the content model (additionalProperties: false); the writer allowed other properties');
    else if (wModel === 'open' && rModel === 'partial') this.#report(path, 'ADDITIONAL_PROPERTIES_NARROWED', 'the reader restricted additionalProperties to a schema; the writer allowed any');
    else if (wModel === 'partial' && rModel === 'closed') this.#report(path, 'ADDITIONAL_PROPERTIES_REMOVED', 'the reader closed the content model (additionalProperties: false)');
    else if (wModel === 'partial' && rModel === 'partial') this.compareChild(ctx, extraOf(writer), extraOf(reader), child(path, '{additionalProperties}'));
  }

  /** Arrays: a list's item schema, or a tuple's positions (draft-07 `items` array, 2020-12 `prefixItems`) and what follows them. */
  #compareArray(ctx: Pair): void {
    const { writer, reader, path } = ctx;
    const w = tupleOf(writer);
    const r = tupleOf(reader);
    if (w.prefix === undefined && r.prefix === undefined) {
      if (r.rest !== undefined) this.compareChild(ctx, w.rest, r.rest, child(path, '[]'));
      return;
    }
    const wPrefix = w.prefix ?? [];
    const rPrefix = r.prefix ?? [];
    const positions = Math.max(wPrefix.length, rPrefix.length);
    for (let i = 0; i < positions; i++) {
      const wItem = i < wPrefix.length ? wPrefix[i] : w.rest;
      const rItem = i < rPrefix.length ? rPrefix[i] : r.rest;
      if (rItem !== undefined) this.compareChild(ctx, wItem, rItem, child(path, `[${i}]`));
    }
    if (r.rest !== undefined) this.compareChild(ctx, w.rest, r.rest, child(path, '[…]'));
  }

  /** `not`: the reader refuses what its `not` matches, so the writer's `not` must cover it (compared with the roles swapped). */
  #compareNot({ writer, reader, writerRoot, readerRoot, path }: Pair): void {
    if (reader.not === undefined) return;
    if (writer.not === undefined) return this.#report(child(path, 'not'), 'NOT_TYPE_EXTENDED', 'the reader refuses documents matching its `not`; the writer had none');
    const swapped = new JsonSchemaCompatibility(this.#writer.doc, this.#reader.doc);
    if (!swapped.compatible(readerRoot, reader.not, writerRoot, writer.not)) this.#report(child(path, 'not'), 'NOT_TYPE_EXTENDED', "the reader's `not` refuses documents the writer's accepted");
  }

  /** `dependencies` (draft-07) and `dependentRequired` / `dependentSchemas` (2019-09 on): added or extended constraints refuse old documents. */
  #compareDependencies(ctx: Pair): void {
    const { writer, reader, path } = ctx;
    const split = (n: Obj): { arrays: Map<string, string[]>; schemas: Map<string, unknown> } => {
      const arrays = new Map<string, string[]>();
      const schemas = new Map<string, unknown>();
      const add = (source: unknown, kind: 'any' | 'array' | 'schema'): void => {
        if (!isObj(source)) return;
        for (const [k, v] of Object.entries(source)) {
          if (Array.isArray(v) && kind !== 'schema') arrays.set(k, v.map(String));
          else if (kind !== 'array') schemas.set(k, v);
        }
      };
      add(n.dependencies, 'any');
      add(n.dependentRequired, 'array');
      add(n.dependentSchemas, 'schema');
      return { arrays, schemas };
    };
    const w = split(writer);
    const r = split(reader);
    for (const [key, rList] of r.arrays) {
      const wList = w.arrays.get(key);
      const where = child(path, `dependencies.${key}`);
      if (wList === undefined) this.#report(where, 'DEPENDENCY_ARRAY_ADDED', `the reader requires ${rList.join(', ')} whenever '${key}' is present`);
      else if (!rList.every((p) => wList.includes(p))) {
        const extended = wList.every((p) => rList.includes(p));
        this.#report(where, extended ? 'DEPENDENCY_ARRAY_EXTENDED' : 'DEPENDENCY_ARRAY_CHANGED', `'${key}' now requires ${rList.join(', ')} (was ${wList.join(', ')})`);
      }
    }
    for (const [key, rSchema] of r.schemas) {
      const where = child(path, `dependencies.${key}`);
      if (!w.schemas.has(key)) this.#report(where, 'DEPENDENCY_SCHEMA_ADDED', `the reader adds a schema that documents holding '${key}' must satisfy`);
      else this.compareChild(ctx, w.schemas.get(key), rSchema, where);
    }
  }
}

interface Pair {
  readonly writerRoot: JsonSchemaNode;
  readonly writer: Obj;
  readonly readerRoot: JsonSchemaNode;
  readonly reader: Obj;
  readonly path: string;
}

function hasDefault(node: unknown): boolean {
  return isObj(node) && 'default' in node;
}

const extraOf = (node: Obj): unknown => node.additionalProperties ?? node.unevaluatedProperties;

/** A tuple's positional schemas (undefined for a list) and the schema of every item after them (undefined: any). */
function tupleOf(node: Obj): { prefix: unknown[] | undefined; rest: unknown } {
  if (Array.isArray(node.prefixItems)) return { prefix: node.prefixItems, rest: node.items ?? node.unevaluatedItems };
  if (Array.isArray(node.items)) return { prefix: node.items, rest: node.additionalItems ?? node.unevaluatedItems };
  return { prefix: undefined, rest: node.items ?? node.additionalItems ?? node.unevaluatedItems };
}

/** The schema that takes a property not declared in `properties`: the first patternProperties entry matching its name, else additionalProperties (or unevaluatedProperties); undefined when none constrains it. */
function coveringSchema(node: Obj, name: string): unknown {
  if (isObj(node.patternProperties)) {
    for (const [pattern, schema] of Object.entries(node.patternProperties)) {
      try {
        if (RE2JS.compile(pattern).test(name)) return schema;
      } catch {
        // A pattern RE2 cannot run never registered (the codec refuses it); ignore it here.
      }
    }
  }
  return extraOf(node);
}

/** open: any extra property allowed; closed: none; partial: those matching a schema. */
function contentModel(node: Obj): 'open' | 'closed' | 'partial' {
  const extra = node.additionalProperties ?? node.unevaluatedProperties;
  if (extra === false) return 'closed';
  if (isObj(extra) && !isEmptySchema(extra)) return 'partial';
  if (isObj(node.patternProperties) && Object.keys(node.patternProperties).length > 0) return 'partial';
  return 'open';
}

export function explainJsonSchemaIncompatibility(reader: JsonSchemaDocument, writer: JsonSchemaDocument): string[] {
  return new JsonSchemaCompatibility(reader, writer).run();
}
