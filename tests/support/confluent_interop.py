"""Confluent's own Python serializers (Debian's python3-confluent-kafka) against Sluice.

  produce BOOTSTRAP REGISTRY JSON_TOPIC PROTO_TOPIC   register (as the serializers do) and write two payments to each topic
  consume BOOTSTRAP REGISTRY TOPIC json|proto COUNT   read COUNT records with the Confluent deserializer, print one JSON line each

The Protobuf message class is built from a FileDescriptorProto equal to schemas/formats/proto_payment.proto
(no protoc here); ProtobufSerializer registers it the way Confluent's clients do, as a base64 FileDescriptorProto.
"""

import json
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CURRENCIES = ["EUR", "USD", "GBP"]


def payment_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="proto_payment.proto", package="dev.sluice.payments", syntax="proto3")
    message = fdp.message_type.add(name="Payment")
    fdp_field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="paymentId", number=1, type=fdp_field.TYPE_STRING, label=fdp_field.LABEL_OPTIONAL, json_name="paymentId")
    message.field.add(name="amountCents", number=2, type=fdp_field.TYPE_INT64, label=fdp_field.LABEL_OPTIONAL, json_name="amountCents")
    message.field.add(
        name="currency", number=3, type=fdp_field.TYPE_ENUM, label=fdp_field.LABEL_OPTIONAL, type_name=".dev.sluice.payments.Payment.Currency", json_name="currency"
    )
    message.field.add(name="note", number=4, type=fdp_field.TYPE_STRING, label=fdp_field.LABEL_OPTIONAL, json_name="note")
    currency = message.enum_type.add(name="Currency")
    for number, name in enumerate(CURRENCIES):
        currency.value.add(name=name, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("dev.sluice.payments.Payment"))


def proto_to_dict(msg):
    # Not MessageToDict: it prints int64 as a string and drops proto3 defaults.
    return {"paymentId": msg.paymentId, "amountCents": msg.amountCents, "currency": CURRENCIES[msg.currency], "note": msg.note}


def produce(bootstrap, registry_url, json_topic, proto_topic):
    registry = SchemaRegistryClient({"url": registry_url})
    with open("schemas/formats/JsonPayment.json") as f:
        json_schema = f.read()
    Payment = payment_class()
    to_json = JSONSerializer(json_schema, registry, lambda obj, ctx: obj)
    to_proto = ProtobufSerializer(Payment, registry)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in (1, 2):
        event = {"paymentId": f"py-json-{i}", "amountCents": 1000 * i, "currency": "USD", "note": "from python"}
        producer.produce(json_topic, key=event["paymentId"], value=to_json(event, SerializationContext(json_topic, MessageField.VALUE)))
        msg = Payment(paymentId=f"py-proto-{i}", amountCents=2000 * i, currency=CURRENCIES.index("GBP"), note="from python")
        producer.produce(proto_topic, key=msg.paymentId, value=to_proto(msg, SerializationContext(proto_topic, MessageField.VALUE)))
    if producer.flush(30) != 0:
        sys.exit("records not delivered within 30 s")


def consume(bootstrap, registry_url, topic, fmt, count):
    registry = SchemaRegistryClient({"url": registry_url})
    if fmt == "json":
        schema = registry.get_latest_version(f"{topic}-value").schema.schema_str
        deserialize = JSONDeserializer(schema, from_dict=lambda obj, ctx: obj)
        as_dict = lambda value: value
    else:
        deserialize = ProtobufDeserializer(payment_class())
        as_dict = proto_to_dict
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"interop-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    for _ in range(600):
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error():
            sys.exit(str(message.error()))
        value = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
        print(json.dumps(as_dict(value)), flush=True)
        seen += 1
        if seen == count:
            break
    consumer.close()
    if seen < count:
        sys.exit(f"read {seen} of {count} records in 60 s")


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(*sys.argv[2:6])
    else:
        consume(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
