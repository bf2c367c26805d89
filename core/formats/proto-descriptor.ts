import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { parseProtoFile } from './protobuf.ts';
import type { ResolvedSchema } from './types.ts';

/**
 * Protobuf schemas given as a base64 `FileDescriptorProto`, as Confluent's
 * Python ProtobufSerializer registers them. Confluent's registry accepts them,
 * keeps the schema as .proto text and answers text on reads (base64 again with
 * `?format=serialized`, built by protoToDescriptor below): the same here. The printer covers what a
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

// ---- .proto text → FileDescriptorProto (`?format=serialized`) ----

/** The name Confluent's registry gives a schema's own file in its descriptor (ProtobufSchema.DEFAULT_NAME). */
export const DEFAULT_FILE_NAME = 'default';

const SCALAR_TYPES = new Set(['double', 'float', 'int64', 'uint64', 'int32', 'fixed64', 'fixed32', 'bool', 'string', 'bytes', 'uint32', 'sfixed32', 'sfixed64', 'sint32', 'sint64']);

const camel = (name: string): string => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** protoc's json_name: each `_` dropped and the letter after it capitalised. */
const jsonName = (name: string): string => name.replace(/_+([a-zA-Z0-9]?)/g, (_, c: string) => c.toUpperCase());

/** protoc's map entry message name: `tag_counts` → `TagCountsEntry`. */
const mapEntryName = (field: string): string => {
  const pascal = jsonName(field);
  return `${pascal.charAt(0).toUpperCase()}${pascal.slice(1)}Entry`;
};

/**
 * The options of `kind` (e.g. `FieldOptions`) that descriptor.proto declares, from protobufjs's option
 * map; custom options (`(confluent.field_meta)`) and protobufjs's own markers are not descriptor fields.
 */
function descriptorOptions(kind: string, options: Record<string, unknown> | undefined): Obj | undefined {
  if (!options) return undefined;
  const declared = (descriptor as unknown as protobuf.Namespace).lookupType(kind).fields;
  const out: Obj = {};
  for (const [key, value] of Object.entries(options)) {
    const name = camel(key);
    if (declared[name] && key !== 'proto3_optional' && key !== 'default') out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const rangeOf = (r: number[] | string, endInclusive: boolean): Obj | undefined => (Array.isArray(r) ? { start: r[0], end: endInclusive ? r[1] : (r[1] ?? 0) + 1 } : undefined);

function enumDescriptor(e: protobuf.Enum): Obj {
  return {
    name: e.name,
    value: Object.entries(e.values).map(([name, number]) => ({ name, number, options: descriptorOptions('EnumValueOptions', e.valuesOptions?.[name]) })),
    options: descriptorOptions('EnumOptions', e.options),
    reservedRange: (e.reserved ?? []).map((r) => rangeOf(r, true)).filter(isObj),
    reservedName: (e.reserved ?? []).filter((r): r is string => typeof r === 'string'),
  };
}

function fieldDescriptor(field: protobuf.Field, proto3: boolean): Obj {
  field.resolve();
  const out: Obj = { name: field.name, number: field.id, jsonName: jsonName(field.name) };
  out.label = field.repeated ? 'LABEL_REPEATED' : field.required ? 'LABEL_REQUIRED' : 'LABEL_OPTIONAL';
  if (SCALAR_TYPES.has(field.type)) out.type = `TYPE_${field.type.toUpperCase()}`;
  else {
    const resolved = field.resolvedType;
    if (!resolved) throw new Error(`type ${field.type} of field ${field.name} is not resolved`);
    out.type = resolved instanceof protobuf.Enum ? 'TYPE_ENUM' : 'TYPE_MESSAGE';
    out.typeName = resolved.fullName; // protobufjs's full names already start with the dot descriptors want
  }
  const defaultValue: unknown = field.options?.default;
  if (!proto3 && defaultValue !== undefined) out.defaultValue = String(defaultValue);
  out.options = descriptorOptions('FieldOptions', field.options);
  return out;
}

function messageDescriptor(type: protobuf.Type, proto3: boolean): Obj {
  const nestedType: Obj[] = [];
  const enumType: Obj[] = [];
  for (const nested of type.nestedArray) {
    if (nested instanceof protobuf.Type) nestedType.push(messageDescriptor(nested, proto3));
    else if (nested instanceof protobuf.Enum) enumType.push(enumDescriptor(nested));
  }
  // protoc lists the real oneofs in declaration order, then proto3 `optional`'s synthetic ones (descriptor.proto requires it).
  const isSynthetic = (o: protobuf.OneOf): boolean => o.fieldsArray.length === 1 && o.fieldsArray[0]!.options?.proto3_optional === true;
  const oneofs = [...type.oneofsArray.filter((o) => !isSynthetic(o)), ...type.fieldsArray.flatMap((f) => (f.partOf && isSynthetic(f.partOf) ? [f.partOf] : []))];
  const field = type.fieldsArray.map((f) => {
    const out = fieldDescriptor(f, proto3);
    if (f instanceof protobuf.MapField) {
      const entry = mapEntryName(f.name);
      const value = new protobuf.Field('value', 2, f.type);
      value.parent = type; // resolved from the map field's scope
      nestedType.push({
        name: entry,
        field: [
          { name: 'key', number: 1, label: 'LABEL_OPTIONAL', type: `TYPE_${f.keyType.toUpperCase()}`, jsonName: 'key' },
          { ...fieldDescriptor(value, proto3), label: 'LABEL_OPTIONAL' },
        ],
        options: { mapEntry: true },
      });
      return { ...out, label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: `${type.fullName}.${entry}`, defaultValue: undefined };
    }
    if (f.partOf) {
      out.oneofIndex = oneofs.indexOf(f.partOf);
      if (isSynthetic(f.partOf)) out.proto3Optional = true;
    }
    return out;
  });
  return {
    name: type.name,
    field,
    nestedType,
    enumType,
    extensionRange: (type.extensions ?? []).map((r) => ({ start: r[0], end: (r[1] ?? 0) + 1 })),
    oneofDecl: oneofs.map((o) => ({ name: o.name, options: descriptorOptions('OneofOptions', o.options) })),
    options: descriptorOptions('MessageOptions', type.options),
    reservedRange: (type.reserved ?? []).map((r) => rangeOf(r, false)).filter(isObj),
    reservedName: (type.reserved ?? []).filter((r): r is string => typeof r === 'string'),
  };
}

/**
 * A Protobuf schema as Confluent's `?format=serialized` answers it: its own file as a
 * `FileDescriptorProto` (what `ProtobufSchema.toDescriptor()` gives), types resolved
 * against its references and named fully, with the leading dot.
 */
export function protoToDescriptor(resolved: ResolvedSchema, name = DEFAULT_FILE_NAME): Uint8Array {
  const own = protobuf.parse(resolved.schema, new protobuf.Root(), { keepCase: true, alternateCommentMode: true });
  const file = parseProtoFile(resolved);
  const proto3 = file.syntax === 'proto3';
  const scope = file.packageName === '' ? file.root : file.root.lookup(file.packageName);
  const ownScope = file.packageName === '' ? own.root : own.root.lookup(file.packageName);
  // The file's own services and options, looked up in the resolved root so their types are resolved too.
  const services = ownScope instanceof protobuf.Namespace ? ownScope.nestedArray.filter((n) => n instanceof protobuf.Service) : [];
  const service = services.map((s) => {
    const resolvedService = (scope as protobuf.Namespace).lookupService(s.name);
    return {
      name: s.name,
      method: resolvedService.methodsArray.map((m) => {
        m.resolve();
        return {
          name: m.name,
          inputType: m.resolvedRequestType?.fullName,
          outputType: m.resolvedResponseType?.fullName,
          ...(m.requestStream === true ? { clientStreaming: true } : {}),
          ...(m.responseStream === true ? { serverStreaming: true } : {}),
          options: descriptorOptions('MethodOptions', m.options),
        };
      }),
      options: descriptorOptions('ServiceOptions', resolvedService.options),
    };
  });
  const weak = own.weakImports ?? [];
  const dependency = [...(own.imports ?? []), ...weak];
  const object: Obj = {
    name,
    dependency,
    weakDependency: weak.map((w) => dependency.indexOf(w)),
    messageType: file.messages.map((m) => messageDescriptor(m, proto3)),
    enumType: file.enums.map(enumDescriptor),
    service,
    options: descriptorOptions('FileOptions', ownScope?.options ?? own.root.options),
    // protoc leaves `syntax` unset for proto2 files.
    ...(proto3 ? { syntax: 'proto3' } : {}),
    ...(file.packageName !== '' ? { package: file.packageName } : {}),
  };
  return descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(object)).finish();
}
