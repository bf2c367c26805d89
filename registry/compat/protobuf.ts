import protobuf from 'protobufjs';
import type { ProtoFile } from '../../core/formats/protobuf.ts';

/**
 * Protobuf compatibility as Confluent defines it: the writer's file is diffed
 * against the reader's, message by message and field by field number (names
 * are not on the wire), and only the differences Confluent lists as
 * compatible pass. Refused, each with Confluent's difference type:
 * PACKAGE_CHANGED, MESSAGE_REMOVED, FIELD_KIND_CHANGED (scalar ↔ message ↔
 * enum), FIELD_SCALAR_KIND_CHANGED (scalars of different wire encodings),
 * FIELD_NAMED_TYPE_CHANGED (another message or enum type),
 * REQUIRED_FIELD_ADDED / REQUIRED_FIELD_REMOVED (proto2), ONEOF_FIELD_REMOVED,
 * FIELD_MOVED_TO_EXISTING_ONEOF, MULTIPLE_FIELDS_MOVED_TO_ONEOF and
 * FIELD_LABEL_CHANGED (singular ↔ repeated, unless length-delimited).
 * Allowed: fields, messages and enums added, fields removed, fields renamed,
 * enum constants added or removed, scalars changed within one wire encoding
 * (int32/uint32/int64/uint64/bool, sint32/sint64, fixed32/sfixed32,
 * fixed64/sfixed64, string/bytes).
 */

const WIRE_GROUPS: readonly (readonly string[])[] = [
  ['int32', 'uint32', 'int64', 'uint64', 'bool'],
  ['sint32', 'sint64'],
  ['fixed32', 'sfixed32'],
  ['fixed64', 'sfixed64'],
  ['string', 'bytes'],
  ['double'],
  ['float'],
];
const groupOf = (type: string): number => WIRE_GROUPS.findIndex((g) => g.includes(type));
const LENGTH_DELIMITED = new Set(['string', 'bytes']);

type Kind = 'scalar' | 'message' | 'enum' | 'map';

/** Enums are varints on the wire: Confluent counts them as scalars of the int32 group, so int32 ↔ enum is compatible. */
function kindOf(field: protobuf.Field): Exclude<Kind, 'enum'> {
  if (field instanceof protobuf.MapField) return 'map';
  if (field.resolvedType instanceof protobuf.Type) return 'message';
  return 'scalar';
}

const scalarGroup = (field: protobuf.Field): number => (field.resolvedType instanceof protobuf.Enum ? groupOf('int32') : groupOf(field.type));

/** A type's name without its own package (`Outer.Inner`), as Confluent compares named types: a type moved to another package or file keeps its name. */
function nameInPackage(type: protobuf.ReflectionObject): string {
  const parts: string[] = [type.name];
  for (let p = type.parent; p instanceof protobuf.Type; p = p.parent) parts.unshift(p.name);
  return parts.join('.');
}

/** A type's name within its file's package, e.g. `Order.Item`. */
function localName(file: ProtoFile, fullName: string): string {
  const name = fullName.replace(/^\./, '');
  return file.packageName !== '' && name.startsWith(`${file.packageName}.`) ? name.slice(file.packageName.length + 1) : name;
}

function allMessages(file: ProtoFile): Map<string, protobuf.Type> {
  const out = new Map<string, protobuf.Type>();
  const visit = (type: protobuf.Type): void => {
    out.set(localName(file, type.fullName), type);
    for (const nested of type.nestedArray) if (nested instanceof protobuf.Type) visit(nested);
  };
  file.messages.forEach(visit);
  return out;
}

export class ProtobufCompatibility {
  readonly #reader: ProtoFile;
  readonly #writer: ProtoFile;
  readonly #out: string[] = [];
  readonly #compared = new Map<protobuf.Type, Set<protobuf.Type>>();

  constructor(reader: ProtoFile, writer: ProtoFile) {
    this.#reader = reader;
    this.#writer = writer;
  }

  run(): string[] {
    if (this.#reader.packageName !== this.#writer.packageName) {
      this.#report('(root)', 'PACKAGE_CHANGED', `package '${this.#writer.packageName}' became '${this.#reader.packageName}'`);
    }
    const readerMessages = allMessages(this.#reader);
    for (const [name, writerType] of allMessages(this.#writer)) {
      const readerType = readerMessages.get(name);
      if (!readerType) this.#report(name, 'MESSAGE_REMOVED', `message ${name} was removed`);
      else this.#compareMessageOnce(name, writerType, readerType);
    }
    return this.#out;
  }

  #report(path: string, code: string, detail: string): void {
    this.#out.push(`${path}: ${code}: ${detail}`);
  }

  #compareMessage(name: string, writer: protobuf.Type, reader: protobuf.Type): void {
    for (const wField of writer.fieldsArray) {
      const path = `${name}.${wField.name}`;
      const rField = reader.fieldsById[wField.id];
      if (!rField) {
        if (wField.required) this.#report(path, 'REQUIRED_FIELD_REMOVED', `required field ${wField.id} was removed`);
        else if (wField.partOf && wField.partOf.fieldsArray.length > 0) this.#report(path, 'ONEOF_FIELD_REMOVED', `field ${wField.id} was removed from oneof ${wField.partOf.name}`);
        continue;
      }
      this.#compareField(`${name}.${rField.name}`, wField, rField);
    }
    for (const rField of reader.fieldsArray) {
      if (writer.fieldsById[rField.id]) continue;
      if (rField.required) this.#report(`${name}.${rField.name}`, 'REQUIRED_FIELD_ADDED', `required field ${rField.id} was added; the writer's data lacks it`);
    }
    this.#compareOneofs(name, writer, reader);
  }

  #compareField(path: string, writer: protobuf.Field, reader: protobuf.Field): void {
    const wKind = kindOf(writer);
    const rKind = kindOf(reader);
    const number = `field ${writer.id}`;
    if (wKind !== rKind) {
      this.#report(path, 'FIELD_KIND_CHANGED', `${number} changed from ${wKind} ${writer.type} to ${rKind} ${reader.type}`);
      return;
    }
    if (wKind === 'scalar') {
      const enums = writer.resolvedType instanceof protobuf.Enum && reader.resolvedType instanceof protobuf.Enum;
      if (enums && nameInPackage(writer.resolvedType!) !== nameInPackage(reader.resolvedType!)) {
        this.#report(path, 'FIELD_NAMED_TYPE_CHANGED', `${number} changed from enum ${writer.type} to enum ${reader.type}`);
        return;
      }
      if (!enums && writer.type !== reader.type && scalarGroup(writer) !== scalarGroup(reader)) {
        this.#report(path, 'FIELD_SCALAR_KIND_CHANGED', `${number} changed from ${writer.type} to ${reader.type}, which has another wire encoding`);
        return;
      }
    } else if (wKind === 'map') {
      const w = writer as unknown as protobuf.MapField;
      const r = reader as unknown as protobuf.MapField;
      const valueName = (f: protobuf.MapField): string => (f.resolvedType ? nameInPackage(f.resolvedType) : f.type);
      if (w.keyType !== r.keyType || valueName(w) !== valueName(r)) {
        this.#report(path, 'FIELD_NAMED_TYPE_CHANGED', `${number} changed from map<${w.keyType}, ${w.type}> to map<${r.keyType}, ${r.type}>`);
      }
      return;
    } else {
      const wType = writer.resolvedType as protobuf.Type;
      const rType = reader.resolvedType as protobuf.Type;
      if (nameInPackage(wType) !== nameInPackage(rType)) {
        this.#report(path, 'FIELD_NAMED_TYPE_CHANGED', `${number} changed from message ${nameInPackage(wType)} to message ${nameInPackage(rType)}`);
        return;
      }
      // Same name, maybe another package or file: the types themselves must still be compatible.
      const before = this.#out.length;
      this.#compareMessageOnce(nameInPackage(rType), wType, rType);
      if (this.#out.length > before) this.#report(path, 'FIELD_NAMED_TYPE_CHANGED', `${number}: message ${nameInPackage(rType)} changed incompatibly`);
    }
    if (writer.repeated !== reader.repeated) {
      const lengthDelimited = wKind === 'message' || LENGTH_DELIMITED.has(writer.type);
      if (!lengthDelimited) this.#report(path, 'FIELD_LABEL_CHANGED', `${number} changed from ${writer.repeated ? 'repeated' : 'singular'} to ${reader.repeated ? 'repeated' : 'singular'}`);
    }
  }

  /** Compares two message types once per pair, so recursive and shared types end. */
  #compareMessageOnce(name: string, writer: protobuf.Type, reader: protobuf.Type): void {
    let readers = this.#compared.get(writer);
    if (readers?.has(reader)) return;
    if (!readers) this.#compared.set(writer, (readers = new Set()));
    readers.add(reader);
    this.#compareMessage(name, writer, reader);
  }

  #compareOneofs(name: string, writer: protobuf.Type, reader: protobuf.Type): void {
    for (const oneof of reader.oneofsArray) {
      // proto3 `optional` is a synthetic oneof of one field: not a real oneof.
      if (oneof.name.startsWith('_') && oneof.fieldsArray.length === 1) continue;
      const writerOneof = writer.oneofsArray.find((o) => o.name === oneof.name);
      const moved = oneof.fieldsArray.filter((f) => {
        const w = writer.fieldsById[f.id];
        return w !== undefined && (!w.partOf || w.partOf.name !== oneof.name);
      });
      if (moved.length === 0) continue;
      // A writer oneof with exactly these fields, under another name: a rename, which the wire does not see.
      const ids = oneof.fieldsArray
        .map((f) => f.id)
        .sort((a, b) => a - b)
        .join(',');
      if (
        !writerOneof &&
        writer.oneofsArray.some(
          (o) =>
            o.fieldsArray
              .map((f) => f.id)
              .sort((a, b) => a - b)
              .join(',') === ids,
        )
      )
        continue;
      if (writerOneof) {
        for (const f of moved) this.#report(`${name}.${f.name}`, 'FIELD_MOVED_TO_EXISTING_ONEOF', `field ${f.id} moved into the existing oneof ${oneof.name}`);
      } else if (moved.length > 1) {
        this.#report(`${name}.${oneof.name}`, 'MULTIPLE_FIELDS_MOVED_TO_ONEOF', `fields ${moved.map((f) => f.id).join(', ')} moved into the new oneof ${oneof.name}`);
      }
    }
  }
}

export function explainProtobufIncompatibility(reader: ProtoFile, writer: ProtoFile): string[] {
  return new ProtobufCompatibility(reader, writer).run();
}
