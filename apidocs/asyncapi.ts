import { valueJsonSchema } from '../contracts/json-schema.ts';
import { schemaTypeOf, type Topology, type ValueSchema } from '../topology/model.ts';

/**
 * AsyncAPI 3 document of a topology: one channel per topic, its messages the
 * topic's schema (Avro and JSON Schema in their own schemaFormat, so tools read the contract itself),
 * operations for what the ingress sends and what each worker receives and sends.
 */

type Json = Record<string, unknown>;

const AVRO_FORMAT = 'application/vnd.apache.avro+json;version=1.9.0';
const JSON_SCHEMA_FORMAT = 'application/schema+json;version=draft-07';
const BODIES = { AVRO: 'Avro body', JSON: 'UTF-8 JSON body', PROTOBUF: 'message-index list and Protobuf body' } as const;

/**
 * The message payload: Avro and JSON Schema contracts as themselves; a Protobuf
 * contract (which AsyncAPI has no schema format for) as the JSON Schema of its
 * first message, with the .proto text alongside.
 */
function payloadOf(value: ValueSchema): Json {
  switch (schemaTypeOf(value)) {
    case 'AVRO':
      return { schemaFormat: AVRO_FORMAT, schema: value.schema };
    case 'JSON':
      return { schemaFormat: JSON_SCHEMA_FORMAT, schema: value.schema };
    case 'PROTOBUF':
      return { ...valueJsonSchema(value), description: `Protobuf message (first of the file):\n${value.text}` };
  }
}
const key = (name: string): string => name.replace(/[^A-Za-z0-9_-]/g, '_');

export function asyncApiDocument(topology: Topology, options: { brokers: string[]; title?: string }): Json {
  const channels: Json = {};
  const messages: Json = {};
  for (const topic of topology.topics) {
    const id = key(topic.name);
    const messageId = `${id}_value`;
    messages[messageId] = topic.valueSchema
      ? {
          name: topic.valueSchema.subject,
          title: `${topic.name} value`,
          summary: `Confluent wire format: magic byte 0, schema id of subject ${topic.valueSchema.subject}, ${BODIES[schemaTypeOf(topic.valueSchema)]}.`,
          contentType: 'application/octet-stream',
          payload: payloadOf(topic.valueSchema),
        }
      : { name: `${topic.name} record`, title: `${topic.name} value`, summary: 'Original bytes of a record that failed, with headers naming the error.', contentType: 'application/octet-stream' };
    channels[id] = {
      address: topic.name,
      title: topic.name,
      messages: { [messageId]: { $ref: `#/components/messages/${messageId}` } },
      // `auto` depends on the cluster, so the binding names replicas only when the file fixes them.
      bindings: { kafka: { partitions: topic.partitions, ...(topic.replicationFactor === 'auto' ? {} : { replicas: topic.replicationFactor }), bindingVersion: '0.5.0' } },
    };
  }
  const operations: Json = {};
  const op = (channel: string, action: 'send' | 'receive', summary: string): Json => ({
    action,
    summary,
    channel: { $ref: `#/channels/${key(channel)}` },
    messages: [{ $ref: `#/channels/${key(channel)}/messages/${key(channel)}_value` }],
  });
  for (const route of topology.routes) {
    operations[key(`ingress_${route.method}_${route.path}`)] = op(route.topic, 'send', `The ingress produces events posted to ${route.method} ${route.path} (key: ${route.key}).`);
  }
  for (const worker of topology.workers) {
    operations[key(`${worker.name}_receive`)] = op(worker.input, 'receive', `Worker ${worker.name} consumes in group ${worker.groupId}.`);
    operations[key(`${worker.name}_send`)] = op(worker.output, 'send', `Worker ${worker.name} emits its results.`);
    operations[key(`${worker.name}_dead_letters`)] = op(worker.deadLetter, 'send', `Worker ${worker.name} dead-letters records it cannot process.`);
  }
  const servers: Json = {};
  options.brokers.forEach((host, i) => {
    servers[`broker${i}`] = { host, protocol: 'kafka', description: 'Kafka bootstrap server' };
  });
  return {
    asyncapi: '3.0.0',
    info: { title: options.title ?? `Sluice topology ${topology.name ?? ''}`.trim(), version: '1.0.0', description: 'Topics, their contracts and who produces and consumes them.' },
    servers,
    channels,
    operations,
    components: { messages },
  };
}
