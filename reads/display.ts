import type { Schema } from 'avsc';

/**
 * Avro values as a reader wants to see them: decimals (bytes or fixed with
 * logicalType decimal) become exact decimal strings instead of opaque bytes.
 * Other bytes stay Buffers, which stringifyJson writes as base64.
 */

export type Convert = (value: unknown) => unknown;

export interface DisplayPlan {
  /** Undefined when no value of this schema needs converting (the common, fast case). */
  convert?: Convert;
  /** Whether values may hold Buffers (bytes or fixed), which plain JSON.stringify would mangle. */
  binary: boolean;
}

type SchemaNode = string | SchemaNode[] | SchemaObject;
interface SchemaObject {
  type?: SchemaNode;
  name?: string;
  namespace?: string;
  logicalType?: string;
  scale?: number;
  fields?: { name: string; type: SchemaNode }[];
  items?: SchemaNode;
  values?: SchemaNode;
}

export function decimalString(bytes: Buffer, scale: number): string {
  let unscaled = 0n;
  for (const byte of bytes) unscaled = (unscaled << 8n) | BigInt(byte);
  // Big-endian two's complement.
  if (bytes.length > 0 && (bytes[0]! & 0x80) !== 0) unscaled -= 1n << BigInt(bytes.length * 8);
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const whole = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${whole}` : whole;
}

class Planner {
  readonly named = new Map<string, SchemaObject>();
  binary = false;
  readonly #visiting = new Set<string>();

  plan(node: SchemaNode, namespace = ''): Convert | undefined {
    if (typeof node === 'string') {
      if (node === 'bytes') this.binary = true;
      const named = this.named.get(node) ?? this.named.get(`${namespace}.${node}`);
      if (!named) return undefined;
      const key = `${named.namespace ?? ''}.${named.name ?? ''}`;
      // A recursive reference is converted through the definition being planned.
      if (this.#visiting.has(key)) return (v) => this.plan(named, named.namespace ?? namespace)?.(v) ?? v;
      return this.plan(named, named.namespace ?? namespace);
    }
    if (Array.isArray(node)) return this.union(node, namespace);
    const schema = node;
    if (schema.name !== undefined) {
      const ns = schema.name.includes('.') ? '' : (schema.namespace ?? namespace);
      const full = ns ? `${ns}.${schema.name}` : schema.name;
      this.named.set(full, schema);
      this.named.set(schema.name, schema);
      namespace = ns;
    }
    const type = schema.type;
    if ((type === 'bytes' || type === 'fixed') && schema.logicalType === 'decimal') {
      this.binary = true;
      const scale = schema.scale ?? 0;
      return (v) => (Buffer.isBuffer(v) ? decimalString(v, scale) : v);
    }
    if (type === 'bytes' || type === 'fixed') {
      this.binary = true;
      return undefined;
    }
    if (type === 'record' || type === 'error') {
      const key = `${namespace}.${schema.name ?? ''}`;
      this.#visiting.add(key);
      const fields = (schema.fields ?? []).map((f) => [f.name, this.plan(f.type, namespace)] as const).filter((f): f is readonly [string, Convert] => f[1] !== undefined);
      this.#visiting.delete(key);
      if (fields.length === 0) return undefined;
      return (v) => {
        if (v === null || typeof v !== 'object') return v;
        const out = { ...(v as Record<string, unknown>) };
        for (const [name, convert] of fields) out[name] = convert(out[name]);
        return out;
      };
    }
    if (type === 'array' && schema.items !== undefined) {
      const item = this.plan(schema.items, namespace);
      return item && ((v) => (Array.isArray(v) ? v.map(item) : v));
    }
    if (type === 'map' && schema.values !== undefined) {
      const value = this.plan(schema.values, namespace);
      return value && ((v) => (v === null || typeof v !== 'object' ? v : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(x)]))));
    }
    if (type !== undefined && typeof type !== 'string') return this.plan(type, namespace);
    if (typeof type === 'string') return this.plan(type, namespace);
    return undefined;
  }

  union(branches: SchemaNode[], namespace: string): Convert | undefined {
    const converts = branches.map((b) => this.plan(b, namespace));
    const nonNull = branches.filter((b) => b !== 'null');
    if (converts.every((c) => c === undefined)) return undefined;
    // With wrapUnions 'auto', null-or-one-type unions hold the plain value; wider unions hold {branchName: value}.
    if (nonNull.length === 1) {
      const only = converts[branches.indexOf(nonNull[0]!)];
      return (v) => (v === null || only === undefined ? v : only(v));
    }
    return (v) => {
      if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
      const entries = Object.entries(v);
      if (entries.length !== 1) return v;
      const [branch, inner] = entries[0]!;
      const index = branches.findIndex((b) => branchName(b) === branch || branchName(b).endsWith(`.${branch}`) || branch.endsWith(`.${branchName(b)}`));
      const convert = index >= 0 ? converts[index] : undefined;
      return convert ? { [branch]: convert(inner) } : v;
    };
  }
}

function branchName(node: SchemaNode): string {
  if (typeof node === 'string') return node;
  if (Array.isArray(node)) return 'union';
  return node.name ?? (typeof node.type === 'string' ? node.type : '');
}

export function displayPlan(schema: Schema): DisplayPlan {
  const planner = new Planner();
  const convert = planner.plan(schema as unknown as SchemaNode);
  return convert === undefined ? { binary: planner.binary } : { convert, binary: planner.binary };
}
