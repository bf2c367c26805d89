import { readFileSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import type { Schema } from 'avsc';
import { LineCounter, parseDocument, isMap, type Document, type Node } from 'yaml';
import { PROJECT_ROOT } from '../core/config.ts';
import { TopologyError } from '../core/errors.ts';
import { isCompatibilityLevel } from '../registry/compatibility.ts';
import { schemaTypeOfFile, SCHEMA_FILE_EXTENSIONS, type SchemaType } from '../core/formats/index.ts';
import { subjectFor, topLevelFields, valueCodec, type DeclaredContract, type RouteSpec, type TopicSpec, type Topology, type ValueSchema, type WorkerSpec } from './model.ts';
import { validateMetadata, validateRuleSet, type Metadata, type RuleSet } from '../rules/index.ts';
import { parseBridges } from './bridges.ts';
import type { PathPart } from '../core/schema-checker.ts';
import { checkAgainstSchema } from './validate-schema.ts';
import { MIN_INSYNC_CONFIG, type ReplicationSetting } from '../broker/replication.ts';

/** Kafka's own rule for topic names (kafka.common.Topic / InternalTopic). */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const WORKER_NAME = /^[a-z0-9][a-z0-9-]*$/;

class Source {
  readonly file: string;
  readonly doc: Document;
  readonly #lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.#lines = new LineCounter();
    this.doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false });
  }

  position(offset: number): { line: number; col: number } {
    return this.#lines.linePos(offset);
  }

  /** `file:line` of the YAML node at `path`. */
  locationOf(path: PathPart[]): string {
    const offset = (this.doc.getIn(path, true) as Node | undefined)?.range?.[0];
    return offset === undefined ? this.displayName : `${this.displayName}:${this.#lines.linePos(offset).line}`;
  }

  get displayName(): string {
    return relative(process.cwd(), this.file) || this.file;
  }

  /** An error pointing at the YAML node at `path` (or its nearest existing parent). */
  error(path: PathPart[], message: string): TopologyError {
    let node: unknown;
    for (let depth = path.length; depth >= 0 && node === undefined; depth--) {
      node = depth === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, depth), true);
    }
    const offset = (node as Node | undefined)?.range?.[0];
    const pos = offset === undefined ? undefined : this.#lines.linePos(offset);
    return new TopologyError({ file: this.displayName, line: pos?.line, column: pos?.col }, formatYamlPath(path), message);
  }
}

function formatYamlPath(path: PathPart[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

class Reader {
  readonly src: Source;
  constructor(src: Source) {
    this.src = src;
  }

  mapping(value: unknown, path: PathPart[], allowed: string[]): Record<string, unknown> {
    if (!isRecord(value)) throw this.src.error(path, `expected a mapping, got ${describe(value)}`);
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw this.src.error([...path, key], `unknown key "${key}" (expected one of: ${allowed.join(', ')})`);
    }
    return value;
  }

  list(value: unknown, path: PathPart[], optional = false): unknown[] {
    if (value === undefined && optional) return [];
    if (!Array.isArray(value)) throw this.src.error(path, `expected a list, got ${describe(value)}`);
    return value;
  }

  string(value: unknown, path: PathPart[], pattern?: RegExp, what?: string): string {
    if (typeof value !== 'string' || value === '') throw this.src.error(path, `expected a non-empty string, got ${describe(value)}`);
    if (pattern && !pattern.test(value)) throw this.src.error(path, `"${value}" is not a valid ${what ?? 'value'}`);
    return value;
  }

  /** A whole number in range or `auto`; absent is `auto`. */
  replication(value: unknown, path: PathPart[]): ReplicationSetting {
    return value === undefined || value === 'auto' ? 'auto' : this.integer(value, path, 1, 32);
  }

  integer(value: unknown, path: PathPart[], min: number, max: number, fallback?: number): number {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw this.src.error(path, `expected a whole number from ${min} to ${max}, got ${describe(value)}`);
    }
    return value;
  }
}

const FORMAT_NAMES: Record<SchemaType, string> = { AVRO: 'Avro schema', JSON: 'JSON Schema', PROTOBUF: 'Protobuf schema' };

/** A value schema file: its format from the extension, parsed (and, for Protobuf, checked to declare a message). */
function loadSchemaFile(src: Source, r: Reader, value: unknown, path: PathPart[], topic: string): ValueSchema {
  const rel = r.string(value, path);
  const schemaType = schemaTypeOfFile(rel);
  if (!schemaType) throw src.error(path, `schema file ${rel} has an unknown extension (expected ${SCHEMA_FILE_EXTENSIONS.join(', ')})`);
  const file = resolve(dirname(src.file), rel);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw src.error(path, `schema file ${rel} not found (looked for ${relative(PROJECT_ROOT, file)})`);
  }
  try {
    const schema = (schemaType === 'PROTOBUF' ? text : JSON.parse(text)) as Schema;
    const loaded: ValueSchema = { file, subject: subjectFor(topic), schemaType, schema, text: schemaType === 'PROTOBUF' ? text : JSON.stringify(schema) };
    const codec = valueCodec(loaded);
    if (codec.schemaType === 'PROTOBUF' && codec.file.messages.length === 0) throw new Error('it declares no message');
    return loaded;
  } catch (error) {
    throw src.error(path, `schema file ${rel} is not a valid ${FORMAT_NAMES[schemaType]}: ${(error as Error).message}`);
  }
}

/** `ruleSet.domainRules[1].expr` (a RuleProblem's path) as YAML path parts. */
function problemPath(path: string): PathPart[] {
  return path.split(/\.|\[(\d+)\]/).flatMap((part, i): PathPart[] => (part === undefined || part === '' ? [] : i % 2 === 1 ? [Number(part)] : [part]));
}

/** A ruleSet given as a file of its own (YAML or JSON), read with its own line numbers. */
function loadRuleSetFile(src: Source, r: Reader, value: string, path: PathPart[]): { ruleSet: unknown; src: Source; path: PathPart[] } {
  const file = resolve(dirname(src.file), r.string(value, path));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw src.error(path, `rules file ${value} not found (looked for ${relative(PROJECT_ROOT, file)})`);
  }
  const rules = new Source(file, text);
  const syntax = rules.doc.errors[0];
  if (syntax) {
    const { line, col } = rules.position(syntax.pos[0]);
    throw new TopologyError({ file: rules.displayName, line, column: col }, '', `YAML syntax: ${syntax.message.split('\n')[0]}`);
  }
  return { ruleSet: rules.doc.toJS(), src: rules, path: [] };
}

/**
 * A topic's valueSchema: a schema file, or a mapping of the file and the version's data contract
 * (Confluent's metadata and ruleSet, the ruleSet inline or in a file of its own), checked as the
 * registry checks them so a bad rule stops the plan at its line rather than at registration.
 */
function loadSchema(src: Source, r: Reader, value: unknown, path: PathPart[], topic: string): ValueSchema {
  if (!isRecord(value)) return loadSchemaFile(src, r, value, path, topic);
  const entry = r.mapping(value, path, ['file', 'metadata', 'ruleSet']);
  const loaded = loadSchemaFile(src, r, entry.file, [...path, 'file'], topic);
  const metadataProblem = validateMetadata(entry.metadata)[0];
  if (metadataProblem) throw src.error([...path, ...problemPath(metadataProblem.path)], metadataProblem.message);
  const rules = typeof entry.ruleSet === 'string' ? loadRuleSetFile(src, r, entry.ruleSet, [...path, 'ruleSet']) : { ruleSet: entry.ruleSet, src, path: [...path, 'ruleSet'] };
  const ruleProblem = validateRuleSet(rules.ruleSet, entry.metadata)[0];
  if (ruleProblem) {
    const where = problemPath(ruleProblem.path).slice(1);
    throw rules.src.error([...rules.path, ...where], ruleProblem.rule === undefined ? ruleProblem.message : `rule "${ruleProblem.rule}": ${ruleProblem.message}`);
  }
  const contract: DeclaredContract = {
    ...(entry.metadata === undefined ? {} : { metadata: entry.metadata as Metadata }),
    ...(rules.ruleSet === undefined ? {} : { ruleSet: rules.ruleSet as RuleSet }),
  };
  return Object.keys(contract).length === 0 ? loaded : { ...loaded, contract };
}

/**
 * A worker's `input`: a topic name, or a mapping of the topic and `useLatestWithMetadata` (Confluent's
 * use.latest.with.metadata), the metadata properties whose latest version the worker reads with. Property
 * values are strings in the registry; a YAML number or boolean (`major_version: 1`) is taken as its text.
 */
function workerInput(src: Source, r: Reader, value: unknown, path: PathPart[]): { topic: string; topicPath: PathPart[]; useLatestWithMetadata?: Record<string, string> } {
  if (!isRecord(value)) return { topic: r.string(value, path), topicPath: path };
  const entry = r.mapping(value, path, ['topic', 'useLatestWithMetadata']);
  const topic = r.string(entry.topic, [...path, 'topic']);
  if (entry.useLatestWithMetadata === undefined) return { topic, topicPath: [...path, 'topic'] };
  const pinPath = [...path, 'useLatestWithMetadata'];
  if (!isRecord(entry.useLatestWithMetadata)) throw src.error(pinPath, `expected a mapping of metadata properties (e.g. major_version: "1"), got ${describe(entry.useLatestWithMetadata)}`);
  const properties: Record<string, string> = {};
  for (const [key, property] of Object.entries(entry.useLatestWithMetadata)) {
    if (typeof property !== 'string' && typeof property !== 'number' && typeof property !== 'boolean') throw src.error([...pinPath, key], `expected a scalar value, got ${describe(property)}`);
    properties[key] = String(property);
  }
  if (Object.keys(properties).length === 0) throw src.error(pinPath, 'expected at least one metadata property (e.g. major_version: "1"), got an empty mapping');
  return { topic, topicPath: [...path, 'topic'], useLatestWithMetadata: properties };
}

/** `sluice.topology.yaml` is topology "sluice". */
function defaultName(file: string): string {
  const stem = basename(file).replace(/(\.topology)?\.ya?ml$/, '');
  return TOPIC_NAME.test(stem) ? stem : 'topology';
}

/**
 * Reads and cross-checks a topology file: first against topology.schema.json
 * (shape, types, names), then across entries (topics exist, key fields exist).
 * Every problem is a TopologyError naming the file, line, column and path of the
 * offending entry.
 */
export function loadTopology(file: string): Topology {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new TopologyError({ file }, '', `cannot read the topology file: ${(error as Error).message}`);
  }
  const src = new Source(absolute, text);
  const syntax = src.doc.errors[0];
  if (syntax) {
    const { line, col } = src.position(syntax.pos[0]);
    throw new TopologyError({ file: src.displayName, line, column: col }, '', `YAML syntax: ${syntax.message.split('\n')[0]}`);
  }
  if (!isMap(src.doc.contents)) throw src.error([], 'expected a mapping with topics, routes and workers');
  const document: unknown = src.doc.toJS();
  const problem = checkAgainstSchema(document);
  if (problem) throw src.error(problem.path, problem.message);
  const r = new Reader(src);
  const root = r.mapping(document, [], ['name', 'topics', 'routes', 'workers', 'bridges']);
  const name = root.name === undefined ? defaultName(absolute) : r.string(root.name, ['name'], TOPIC_NAME, 'topology name');

  const topics: TopicSpec[] = r.list(root.topics, ['topics']).map((raw, i) => {
    const path = ['topics', i];
    const t = r.mapping(raw, path, ['name', 'partitions', 'replicationFactor', 'minInsyncReplicas', 'configs', 'valueSchema', 'compatibility']);
    const name = r.string(t.name, [...path, 'name'], TOPIC_NAME, 'Kafka topic name (letters, digits, ".", "_", "-"; at most 249)');
    if (name === '.' || name === '..') throw src.error([...path, 'name'], `"${name}" is not a valid Kafka topic name`);
    const configs: Record<string, string> = {};
    if (t.configs !== undefined) {
      if (!isRecord(t.configs)) throw src.error([...path, 'configs'], `expected a mapping of Kafka topic configs, got ${describe(t.configs)}`);
      for (const [key, value] of Object.entries(t.configs)) {
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          throw src.error([...path, 'configs', key], `expected a scalar value, got ${describe(value)}`);
        }
        configs[key] = String(value);
      }
    }
    if (t.minInsyncReplicas !== undefined && configs[MIN_INSYNC_CONFIG] !== undefined) {
      throw src.error([...path, 'configs', MIN_INSYNC_CONFIG], `set either minInsyncReplicas or configs.${MIN_INSYNC_CONFIG}, not both`);
    }
    const replicationFactor = r.replication(t.replicationFactor, [...path, 'replicationFactor']);
    const minInsyncReplicas = r.replication(t.minInsyncReplicas, [...path, 'minInsyncReplicas']);
    if (replicationFactor !== 'auto' && minInsyncReplicas !== 'auto' && minInsyncReplicas > replicationFactor) {
      throw src.error([...path, 'minInsyncReplicas'], `min.insync.replicas ${minInsyncReplicas} exceeds the replication factor ${replicationFactor}, so no acks=all write could succeed`);
    }
    if (t.compatibility !== undefined && !isCompatibilityLevel(t.compatibility)) {
      throw src.error([...path, 'compatibility'], `expected a compatibility level, got ${describe(t.compatibility)}`);
    }
    return {
      name,
      partitions: r.integer(t.partitions, [...path, 'partitions'], 1, 10_000, 1),
      replicationFactor,
      // configs.min.insync.replicas, when given, is the setting; otherwise the plan writes this one.
      ...(configs[MIN_INSYNC_CONFIG] === undefined ? { minInsyncReplicas } : {}),
      location: src.locationOf(path),
      configs,
      ...(t.valueSchema === undefined ? {} : { valueSchema: loadSchema(src, r, t.valueSchema, [...path, 'valueSchema'], name) }),
      ...(t.compatibility === undefined ? {} : { compatibility: t.compatibility }),
    };
  });
  const seen = new Set<string>();
  topics.forEach((t, i) => {
    if (seen.has(t.name)) throw src.error(['topics', i, 'name'], `topic "${t.name}" is declared twice`);
    seen.add(t.name);
  });

  const requireTopic = (name: string, path: PathPart[]): TopicSpec => {
    const topic = topics.find((t) => t.name === name);
    if (!topic) throw src.error(path, `topic "${name}" is not declared under topics (declared: ${topics.map((t) => t.name).join(', ') || 'none'})`);
    return topic;
  };

  const routes: RouteSpec[] = r.list(root.routes, ['routes'], true).map((raw, i) => {
    const path = ['routes', i];
    const route = r.mapping(raw, path, ['method', 'path', 'topic', 'key']);
    const method = r.string(route.method ?? 'POST', [...path, 'method']);
    if (method !== 'POST') throw src.error([...path, 'method'], `only POST routes are supported, got "${method}"`);
    const topicName = r.string(route.topic, [...path, 'topic']);
    const topic = requireTopic(topicName, [...path, 'topic']);
    if (!topic.valueSchema) throw src.error([...path, 'topic'], `topic "${topicName}" has no valueSchema, so events posted to it cannot be checked`);
    const key = r.string(route.key, [...path, 'key']);
    const fields = topLevelFields(topic.valueSchema);
    if (fields && !fields.includes(key)) {
      throw src.error([...path, 'key'], `key field "${key}" is not a field of ${topic.valueSchema.subject} (fields: ${fields.join(', ')})`);
    }
    return { method: 'POST', path: r.string(route.path, [...path, 'path'], /^\/[A-Za-z0-9._~\-/]*$/, 'URL path'), topic: topicName, key };
  });

  const workers: WorkerSpec[] = r.list(root.workers, ['workers'], true).map((raw, i) => {
    const path = ['workers', i];
    const w = r.mapping(raw, path, ['name', 'input', 'output', 'deadLetter', 'groupId', 'handler', 'delivery']);
    const name = r.string(w.name, [...path, 'name'], WORKER_NAME, 'worker name (lower-case letters, digits and "-")');
    const reading = workerInput(src, r, w.input, [...path, 'input']);
    const input = requireTopic(reading.topic, reading.topicPath);
    const output = requireTopic(r.string(w.output, [...path, 'output']), [...path, 'output']);
    for (const [topic, field] of [
      [input, reading.topicPath],
      [output, [...path, 'output']],
    ] as [TopicSpec, PathPart[]][]) {
      if (!topic.valueSchema) throw src.error(field, `topic "${topic.name}" has no valueSchema; workers decode and encode by schema`);
    }
    const deadLetter = requireTopic(r.string(w.deadLetter, [...path, 'deadLetter']), [...path, 'deadLetter']);
    const handlerRel = r.string(w.handler, [...path, 'handler']);
    const handler = resolve(dirname(absolute), handlerRel);
    try {
      readFileSync(handler);
    } catch {
      throw src.error([...path, 'handler'], `handler module ${handlerRel} not found`);
    }
    const delivery = r.string(w.delivery ?? 'at-least-once', [...path, 'delivery']);
    if (delivery !== 'at-least-once' && delivery !== 'exactly-once') {
      throw src.error([...path, 'delivery'], `expected "exactly-once" or "at-least-once", got "${delivery}"`);
    }
    return {
      name,
      input: input.name,
      output: output.name,
      deadLetter: deadLetter.name,
      groupId: r.string(w.groupId ?? `sluice.${name}`, [...path, 'groupId']),
      handler,
      delivery,
      ...(reading.useLatestWithMetadata === undefined ? {} : { useLatestWithMetadata: reading.useLatestWithMetadata, location: src.locationOf([...path, 'input', 'useLatestWithMetadata']) }),
    };
  });
  const workerNames = new Set<string>();
  workers.forEach((w, i) => {
    if (workerNames.has(w.name)) throw src.error(['workers', i, 'name'], `worker "${w.name}" is declared twice`);
    workerNames.add(w.name);
  });

  const bridges = parseBridges(root.bridges, topics, (path, message) => src.error(path, message));

  return { file: absolute, name, topics, routes, workers, ...(bridges.length === 0 ? {} : { bridges }) };
}
