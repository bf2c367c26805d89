import { Ajv, type ErrorObject } from 'ajv';

/**
 * Checks a parsed YAML or JSON document against a JSON Schema (the topology's and
 * the access file's, the same schemas editors use), so the editor and `sluice`
 * agree on what is valid. Gives the first problem as a path into the document and
 * a message in plain words; the loaders turn the path into file:line:column.
 */

export type PathPart = string | number;

export interface SchemaProblem {
  path: PathPart[];
  message: string;
}

const ajv = new Ajv({ allErrors: false, verbose: true, strict: true, allowUnionTypes: true });

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function pathOf(instancePath: string): PathPart[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

interface SchemaNode {
  description?: string;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, unknown>;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
};

function messageFor(error: ErrorObject): SchemaProblem {
  const path = pathOf(error.instancePath);
  const schema = (error.parentSchema ?? {}) as SchemaNode;
  const data: unknown = error.data;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys(schema.properties ?? {});
      return { path: [...path, key], message: `unknown key "${key}" (expected one of: ${allowed.join(', ')})` };
    }
    case 'required':
      return { path, message: `missing required key "${String(params.missingProperty)}"` };
    case 'type':
    case 'minimum':
    case 'maximum': {
      if (schema.minimum !== undefined && schema.maximum !== undefined) {
        return { path, message: `expected a whole number from ${schema.minimum} to ${schema.maximum}, got ${describe(data)}` };
      }
      const types = (Array.isArray(params.type) ? params.type : [params.type]).map((t) => TYPE_WORDS[String(t)] ?? String(t));
      return { path, message: `expected ${types.join(' or ')}, got ${describe(data)}` };
    }
    case 'pattern':
    case 'not':
      return { path, message: `${JSON.stringify(data)} is not ${schema.description ?? `matching ${String(params.pattern)}`}` };
    case 'minLength':
      return { path, message: `expected a non-empty string, got ${describe(data)}` };
    case 'minProperties':
      return { path, message: `expected a mapping with at least ${String(params.limit)} key${params.limit === 1 ? '' : 's'}, got an empty one` };
    case 'enum':
      return { path, message: `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describe(data)}` };
    case 'const':
      return { path, message: `expected ${JSON.stringify(params.allowedValue)}, got ${describe(data)}` };
    default:
      return { path, message: error.message ?? `fails the ${error.keyword} rule` };
  }
}

/** A checker for any JSON Schema, reporting its first problem in a loader's words (the topology and access files). */
export function compileChecker(schema: object, name: string): (document: unknown) => SchemaProblem | undefined {
  const validate = ajv.compile(schema);
  return (document) => {
    if (validate(document)) return undefined;
    const first = validate.errors?.[0];
    return first ? messageFor(first) : { path: [], message: `does not match ${name}` };
  };
}
