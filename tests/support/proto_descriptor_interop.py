"""Sluice's `?format=serialized` Protobuf descriptors checked by Google's own protobuf (Debian's python3-protobuf).

  encode      stdin: {"files": [[import name, base64 FileDescriptorProto], dependencies first], "message": full name,
              "value": JSON}; names each file as its importers do (the registry answers every file as "default", and
              Confluent's clients name a reference's file by the reference's name), adds the files to a DescriptorPool (which validates every type reference), builds the message from
              the JSON value and prints its bytes in base64
  descriptor  prints the base64 FileDescriptorProto of orders.proto below, built with descriptor_pb2 as protoc
              would and sent the way Confluent's ProtobufSerializer registers a schema
  compare A B prints "equal" when the base64 descriptors A and B are equal apart from `name` (Confluent's registry
              keeps a schema as text and names its own file "default" in the descriptors it answers), else both
"""

import base64
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, timestamp_pb2

F = descriptor_pb2.FieldDescriptorProto


def encode(request):
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    for name, b64 in request["files"]:
        file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(b64))
        file.name = name
        pool.Add(file)
    cls = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(request["message"]))
    msg = json_format.ParseDict(request["value"], cls())
    print(base64.b64encode(msg.SerializeToString()).decode())


def field(message, name, number, ftype, label=F.LABEL_OPTIONAL, type_name=None, **extra):
    json_name = name.split("_")[0] + "".join(p.capitalize() for p in name.split("_")[1:])
    f = message.field.add(name=name, number=number, type=ftype, label=label, json_name=json_name, **extra)
    if type_name:
        f.type_name = type_name
    return f


def descriptor():
    fdp = descriptor_pb2.FileDescriptorProto(name="orders.proto", package="py.orders", syntax="proto3")
    fdp.dependency.append("google/protobuf/timestamp.proto")
    order = fdp.message_type.add(name="Order")
    field(order, "order_id", 1, F.TYPE_STRING)
    field(order, "lines", 2, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".py.orders.Order.Line")
    field(order, "tag_counts", 3, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".py.orders.Order.TagCountsEntry")
    field(order, "card", 4, F.TYPE_STRING, oneof_index=0)
    field(order, "iban", 5, F.TYPE_STRING, oneof_index=0)
    field(order, "note", 6, F.TYPE_STRING, oneof_index=1, proto3_optional=True)
    field(order, "status", 7, F.TYPE_ENUM, type_name=".py.orders.Status")
    field(order, "placed_at", 8, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp")
    line = order.nested_type.add(name="Line")
    field(line, "sku", 1, F.TYPE_STRING)
    field(line, "qty", 2, F.TYPE_INT64)
    entry = order.nested_type.add(name="TagCountsEntry")
    field(entry, "key", 1, F.TYPE_STRING)
    field(entry, "value", 2, F.TYPE_INT32)
    entry.options.map_entry = True
    order.oneof_decl.add(name="payment")
    order.oneof_decl.add(name="_note")
    status = fdp.enum_type.add(name="Status")
    for number, name in enumerate(["NEW", "PAID"]):
        status.value.add(name=name, number=number)
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(fdp)  # what Confluent's serializer sends is a file its own pool accepted
    print(base64.b64encode(fdp.SerializeToString()).decode())


def compare(a, b):
    sent, answered = (descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(x)) for x in (a, b))
    sent.ClearField("name")
    answered.ClearField("name")
    print("equal" if sent == answered else f"sent:\n{sent}\nanswered:\n{answered}")


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(json.load(sys.stdin))
    elif sys.argv[1] == "descriptor":
        descriptor()
    else:
        compare(sys.argv[2], sys.argv[3])
