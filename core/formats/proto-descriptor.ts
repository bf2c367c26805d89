import descriptor from 'protobufjs/ext/descriptor/index.js';

/**
 * Protobuf schemas given as a base64 `FileDescriptorProto`, as Confluent's
 * Python ProtobufSerializer registers them. Confluent's registry accepts them,
 * keeps the schema as .proto text and answers text on reads: the same here
 * (`?format=serialized`, base64 again on reads, is not served yet). The printer covers what a
 * descriptor of a schema holds: syntax, package, imports, file options of
 * scalar value, messages (nested, maps, oneofs, proto3 optional, reserved),
 * enums and services.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** A .proto text always holds `;` or `{`; base64 never does. */
export function isSerializedDescriptor(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length >= 4 && /^[A-Za-z0-9+/\r\n]+={0,2}$/.test(trimmed);
}

const quote = (s: string): string => JSON.stringify(s);

function optionList(options: unknown, skip: ReadonlySet<string> = new Set()): string[] {
  if (!isObj(options)) return [];
  return Object.entries(options)
    .filter(([k, v]) => !skip.has(k) && k !== 'uninterpretedOption' && (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number'))
    .map(([k, v]) => `${snake(k)} = ${typeof v === 'string' && !/^[A-Z_]+$/.test(v) ? quote(v) : String(v)}`);
}

/** protobufjs gives option names in camelCase; .proto text wants the declared snake_case. */
const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function typeOf(field: Obj): string {
  const type = String(field.type ?? '')
    .replace(/^TYPE_/, '')
    .toLowerCase();
  return type === 'message' || type === 'enum' || type === 'group' ? String(field.typeName ?? '') : type;
}

function printEnum(e: Obj, indent: string): string[] {
  const out = [`${indent}enum ${String(e.name)} {`];
  for (const o of optionList(e.options)) out.push(`${indent}  option ${o};`);
  for (const v of list(e.value)) out.push(`${indent}  ${String(v.name)} = ${Number(v.number ?? 0)};`);
  out.push(`${indent}}`);
  return out;
}

function printMessage(m: Obj, indent: string, proto3: boolean): string[] {
  const out = [`${indent}message ${String(m.name)} {`];
  const inner = `${indent}  `;
  const nested = list(m.nestedType);
  const mapEntries = new Map(nested.filter((n) => isObj(n.options) && n.options.mapEntry === true).map((n) => [String(n.name), n]));
  for (const o of optionList(m.options, new Set(['mapEntry']))) out.push(`${inner}option ${o};`);
  for (const n of nested) if (!mapEntries.has(String(n.name))) out.push(...printMessage(n, inner, proto3));
  for (const e of list(m.enumType)) out.push(...printEnum(e, inner));
  const oneofs = list(m.oneofDecl);
  const fields = list(m.field);
  const printed = new Set<number>();
  const fieldLine = (f: Obj, pad: string, inOneof: boolean): string => {
    const entry = typeOf(f).split('.').at(-1);
    const map = f.label === 'LABEL_REPEATED' && entry !== undefined ? mapEntries.get(entry) : undefined;
    const options: string[] = [];
    if (f.defaultValue !== undefined && f.defaultValue !== '') options.push(`default = ${typeOf(f) === 'string' ? quote(String(f.defaultValue)) : String(f.defaultValue)}`);
    // `packed` means something only on repeated numeric scalars; some encoders write packed=false everywhere.
    const numeric = f.label === 'LABEL_REPEATED' && !map && !['string', 'bytes'].includes(typeOf(f)) && !String(f.type).match(/MESSAGE|GROUP/);
    options.push(...optionList(f.options, numeric ? new Set() : new Set(['packed'])));
    const suffix = options.length > 0 ? ` [${options.join(', ')}]` : '';
    if (map) {
      const [k, v] = list(map.field);
      return `${pad}map<${k ? typeOf(k) : 'string'}, ${v ? typeOf(v) : 'string'}> ${String(f.name)} = ${Number(f.number)}${suffix};`;
    }
    const label = inOneof ? '' : f.label === 'LABEL_REPEATED' ? 'repeated ' : f.label === 'LABEL_REQUIRED' ? 'required ' : f.proto3Optional === true || !proto3 ? 'optional ' : '';
    return `${pad}${label}${typeOf(f)} ${String(f.name)} = ${Number(f.number)}${suffix};`;
  };
  // proto3 `optional` is a synthetic oneof `_name` of that one field (older encoders do not set proto3Optional).
  const synthetic = (index: number): boolean => {
    const members = fields.filter((g) => g.oneofIndex === index);
    return members.length === 1 && oneofs[index]?.name === `_${String(members[0]!.name)}`;
  };
  fields.forEach((f, i) => {
    if (printed.has(i)) return;
    const oneofIndex = typeof f.oneofIndex === 'number' ? f.oneofIndex : undefined;
    if (oneofIndex !== undefined && proto3 && synthetic(oneofIndex)) f.proto3Optional = true;
    if (oneofIndex === undefined || f.proto3Optional === true) {
      out.push(fieldLine(f, inner, false));
      return;
    }
    out.push(`${inner}oneof ${String(oneofs[oneofIndex]?.name ?? `oneof_${oneofIndex}`)} {`);
    fields.forEach((g, j) => {
      if (g.oneofIndex === oneofIndex && g.proto3Optional !== true) {
        out.push(fieldLine(g, `${inner}  `, true));
        printed.add(j);
      }
    });
    out.push(`${inner}}`);
  });
  for (const r of list(m.reservedRange)) {
    const start = Number(r.start);
    const end = Number(r.end) - 1;
    out.push(`${inner}reserved ${start === end ? start : `${start} to ${end}`};`);
  }
  const names = Array.isArray(m.reservedName) ? m.reservedName.map(String) : [];
  if (names.length > 0) out.push(`${inner}reserved ${names.map(quote).join(', ')};`);
  out.push(`${indent}}`);
  return out;
}

/** The .proto text of a base64 `FileDescriptorProto`; throws when it is not one. */
export function descriptorToProto(base64: string): string {
  const bytes = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  const file = descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes), { enums: String, longs: Number, defaults: false }) as Obj;
  const proto3 = file.syntax === 'proto3';
  const out = [`syntax = ${quote(proto3 ? 'proto3' : String(file.syntax || 'proto2'))};`];
  if (typeof file.package === 'string' && file.package !== '') out.push(`package ${file.package};`);
  for (const dep of Array.isArray(file.dependency) ? file.dependency.map(String) : []) out.push(`import ${quote(dep)};`);
  for (const o of optionList(file.options)) out.push(`option ${o};`);
  for (const m of list(file.messageType)) out.push('', ...printMessage(m, '', proto3));
  for (const e of list(file.enumType)) out.push('', ...printEnum(e, ''));
  for (const s of list(file.service)) {
    out.push('', `service ${String(s.name)} {`);
    for (const method of list(s.method)) {
      const stream = (flag: unknown): string => (flag === true ? 'stream ' : '');
      out.push(`  rpc ${String(method.name)} (${stream(method.clientStreaming)}${String(method.inputType)}) returns (${stream(method.serverStreaming)}${String(method.outputType)});`);
    }
    out.push('}');
  }
  return `${out.join('\n')}\n`;
}
