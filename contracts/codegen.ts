import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Schema } from 'avsc';
import { PROJECT_ROOT } from '../core/config.ts';
import { valueCodec, type Topology, type ValueSchema } from '../topology/model.ts';
import { generateJsonSchemaTypes, generateProtobufTypes, type GeneratedFile } from './codegen-formats.ts';

/**
 * TypeScript types for Avro schemas, shaped as Sluice's decoder produces values
 * (core/formats/avro-types.ts): longs are `number | bigint` (a BigInt only beyond 2^53),
 * timestamp-millis is epoch milliseconds, a union with null is `T | null`,
 * enums are unions of string literals, bytes and fixed are Buffers.
 */

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const PRIMITIVES: Record<string, string> = {
  null: 'null',
  boolean: 'boolean',
  int: 'number',
  long: 'AvroLong',
  float: 'number',
  double: 'number',
  bytes: 'Buffer',
  string: 'string',
};

/** Logical types that change the decoded value's shape; others decode as their underlying type. */
const LOGICAL: Record<string, string> = {
  'timestamp-millis': 'number',
  'timestamp-micros': 'AvroLong',
  'time-millis': 'number',
  date: 'number',
  uuid: 'string',
};

const shortName = (name: string): string => name.split('.').pop() ?? name;

function docComment(doc: unknown, indent: string): string {
  if (typeof doc !== 'string' || doc.trim() === '') return '';
  const lines = doc.trim().replace(/\*\//g, '*\\/').split('\n');
  return lines.length === 1 ? `${indent}/** ${lines[0]} */\n` : `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}

class Emitter {
  readonly #declarations: string[] = [];
  readonly #named = new Set<string>();
  usesLong = false;

  get declarations(): string[] {
    return this.#declarations;
  }

  typeOf(schema: Schema | unknown): string {
    if (typeof schema === 'string') {
      const primitive = PRIMITIVES[schema];
      if (primitive !== undefined) return this.#note(primitive);
      // A reference to a named type declared earlier in the schema.
      return shortName(schema);
    }
    if (Array.isArray(schema)) {
      const branches = schema.map((b) => this.typeOf(b));
      const nonNull = branches.filter((b) => b !== 'null');
      const nullable = nonNull.length < branches.length;
      const inner = nonNull.length > 1 ? nonNull.map((b) => (b.includes(' ') ? `(${b})` : b)).join(' | ') : (nonNull[0] ?? 'never');
      return nullable ? `${inner.includes(' ') && nonNull.length === 1 ? `(${inner})` : inner} | null` : inner;
    }
    if (!isObject(schema)) throw new Error(`not an Avro schema: ${JSON.stringify(schema)}`);
    const logical = typeof schema.logicalType === 'string' ? LOGICAL[schema.logicalType] : undefined;
    if (logical !== undefined) return this.#note(logical);
    switch (schema.type) {
      case 'record':
      case 'error':
        return this.#record(schema);
      case 'enum':
        return this.#enum(schema);
      case 'fixed':
        return this.#alias(schema, 'Buffer');
      case 'array': {
        const items = this.typeOf(schema.items);
        return items.includes(' ') ? `(${items})[]` : `${items}[]`;
      }
      case 'map':
        return `Record<string, ${this.typeOf(schema.values)}>`;
      default:
        return this.typeOf(schema.type);
    }
  }

  #note(type: string): string {
    if (type === 'AvroLong') this.usesLong = true;
    return type;
  }

  #claim(schema: Json): string | undefined {
    const name = shortName(String(schema.name));
    if (this.#named.has(name)) return undefined;
    this.#named.add(name);
    return name;
  }

  #record(schema: Json): string {
    const name = shortName(String(schema.name));
    if (!this.#claim(schema)) return name;
    const fields = (Array.isArray(schema.fields) ? schema.fields : []) as Json[];
    // Fields are typed first so nested named types are declared before this one.
    const body = fields.map((f) => `${docComment(f.doc, '  ')}  ${String(f.name)}: ${this.typeOf(f.type)};`);
    this.#declarations.push(`${docComment(schema.doc, '')}export interface ${name} {\n${body.join('\n')}\n}\n`);
    return name;
  }

  #enum(schema: Json): string {
    const name = shortName(String(schema.name));
    if (!this.#claim(schema)) return name;
    const symbols = (Array.isArray(schema.symbols) ? schema.symbols : []).map((s) => `'${String(s)}'`);
    this.#declarations.push(`${docComment(schema.doc, '')}export type ${name} = ${symbols.join(' | ') || 'never'};\n`);
    return name;
  }

  #alias(schema: Json, type: string): string {
    const name = shortName(String(schema.name));
    if (this.#claim(schema)) this.#declarations.push(`${docComment(schema.doc, '')}export type ${name} = ${type};\n`);
    return name;
  }
}

/** The TypeScript module for one .avsc file (its top-level type and every named type inside). */
export function generateTypes(schema: Schema, sourceFile: string): GeneratedFile {
  const emitter = new Emitter();
  const top = emitter.typeOf(schema);
  const declarations = [...emitter.declarations];
  const stem = basename(sourceFile).replace(/\.avsc$/, '');
  if (top !== stem && !declarations.some((d) => d.includes(` ${top} `))) declarations.push(`export type ${stem} = ${top};\n`);
  const header = [
    `// Generated by \`sluice schemas codegen\` from ${relative(PROJECT_ROOT, sourceFile)}.`,
    '// Do not edit: change the .avsc file and run the command again (a unit test fails when this file is stale).',
    '',
  ];
  const long = emitter.usesLong ? ['/** An Avro long: a number when exact, a BigInt beyond 2^53. */', 'export type AvroLong = number | bigint;', ''] : [];
  return { name: `${stem}.ts`, text: `${[...header, ...long].join('\n')}\n${declarations.join('\n')}` };
}

export interface PlannedFile extends GeneratedFile {
  /** Absolute path: `generated/` next to the .avsc file. */
  path: string;
}

function generateFor(value: ValueSchema): GeneratedFile {
  const codec = valueCodec(value);
  switch (codec.schemaType) {
    case 'AVRO':
      return generateTypes(value.schema, value.file);
    case 'JSON':
      return generateJsonSchemaTypes(codec.root, value.file);
    case 'PROTOBUF':
      return generateProtobufTypes(codec.file, value.file);
  }
}

/** One module per schema file (.avsc, .json, .proto) the topology uses, in `generated/` beside it. */
export function generateForTopology(topology: Topology): PlannedFile[] {
  const bySource = new Map<string, ValueSchema>();
  for (const topic of topology.topics) if (topic.valueSchema) bySource.set(topic.valueSchema.file, topic.valueSchema);
  const planned = [...bySource.values()].map((value) => {
    const generated = generateFor(value);
    return { ...generated, path: join(dirname(value.file), 'generated', generated.name), source: value.file };
  });
  // Case-insensitively: Payment.ts and payment.ts are one file on some file systems.
  const byPath = new Map<string, string>();
  for (const file of planned) {
    const other = byPath.get(file.path.toLowerCase());
    if (other !== undefined)
      throw new Error(`${relative(PROJECT_ROOT, other)} and ${relative(PROJECT_ROOT, file.source)} would both generate ${relative(PROJECT_ROOT, file.path)}: rename one of them`);
    byPath.set(file.path.toLowerCase(), file.source);
  }
  return planned.map(({ source: _source, ...file }) => file);
}

/** The generated files whose content on disk differs from what the schemas give now. */
export function staleFiles(files: readonly PlannedFile[]): PlannedFile[] {
  return files.filter((f) => !existsSync(f.path) || readFileSync(f.path, 'utf8') !== f.text);
}

export function writeGenerated(files: readonly PlannedFile[]): void {
  for (const file of files) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.text);
  }
}
