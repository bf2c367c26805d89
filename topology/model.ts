import type { Schema } from 'avsc';
import { createCodec, type AnyCodec, type SchemaType } from '../core/formats/index.ts';
import type { CompatibilityLevel } from '../registry/compatibility.ts';
import type { Metadata, RuleSet } from '../rules/index.ts';
import type { ReplicationSetting } from '../broker/replication.ts';

/** The topology as the platform uses it, after loading and cross-checking. */

export interface ValueSchema {
  /** Absolute path of the .avsc, .json (JSON Schema) or .proto file. */
  file: string;
  /** Registry subject (TopicNameStrategy: `<topic>-value`). */
  subject: string;
  /** From the file's extension; absent means AVRO. */
  schemaType?: SchemaType;
  /** Avro: the schema as parsed JSON; JSON Schema: the schema document; Protobuf: the .proto text. */
  schema: Schema;
  /** The schema text as written to the registry. */
  text: string;
  /**
   * The data contract the file declares for the version (Confluent's `metadata` and `ruleSet`), registered
   * with the schema. Absent: the file leaves the subject's rules to whoever manages them through the API.
   */
  contract?: DeclaredContract;
}

export interface DeclaredContract {
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

export function schemaTypeOf(value: ValueSchema): SchemaType {
  return value.schemaType ?? 'AVRO';
}

const codecs = new WeakMap<ValueSchema, AnyCodec>();

/** The codec of a topic's value schema, built once. */
export function valueCodec(value: ValueSchema): AnyCodec {
  let codec = codecs.get(value);
  if (!codec) {
    codec = createCodec({ schemaType: schemaTypeOf(value), schema: value.text, references: [] });
    codecs.set(value, codec);
  }
  return codec;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The top-level field names of a record / object / first message; undefined when the schema has no fixed fields. */
export function topLevelFields(value: ValueSchema): string[] | undefined {
  const schema: unknown = value.schema;
  switch (schemaTypeOf(value)) {
    case 'AVRO':
      if (isObject(schema) && (schema.type === 'record' || schema.type === 'error') && Array.isArray(schema.fields)) return (schema.fields as { name: string }[]).map((f) => f.name);
      return undefined;
    case 'JSON':
      return isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : undefined;
    case 'PROTOBUF': {
      const codec = valueCodec(value);
      return codec.schemaType === 'PROTOBUF' ? codec.file.messages[0]?.fieldsArray.map((f) => f.name) : undefined;
    }
  }
}

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Replicas per partition; `auto` = min(3, brokers) (topology/replication.ts). */
  replicationFactor: ReplicationSetting;
  /** The topic's min.insync.replicas; `auto` (the default) = replication factor − 1, at least 1. */
  minInsyncReplicas?: ReplicationSetting;
  /** `file:line` of the topic's entry, for plan errors that only the cluster reveals. */
  location?: string;
  configs: Record<string, string>;
  valueSchema?: ValueSchema;
  /** Compatibility level of the value subject; unset leaves the registry's global level in force. */
  compatibility?: CompatibilityLevel;
}

export interface RouteSpec {
  method: 'POST';
  path: string;
  topic: string;
  /** Field of the event whose value is the Kafka key. */
  key: string;
}

/** exactly-once: consume, handle and produce in Kafka transactions; at-least-once: faster, outputs may repeat after a crash. */
export type DeliveryMode = 'exactly-once' | 'at-least-once';

export interface WorkerSpec {
  name: string;
  input: string;
  output: string;
  deadLetter: string;
  groupId: string;
  /** Absolute path of the module whose default export is the handler. */
  handler: string;
  delivery: DeliveryMode;
  /**
   * Confluent's `use.latest.with.metadata` (the topology's `input.useLatestWithMetadata`): the worker reads with
   * the latest version of its input subject whose metadata properties hold all of these (e.g. `major_version: "1"`),
   * found in the registry and followed as it changes, instead of the version of the topology's input schema.
   * Records of other versions run the migration rules between theirs and it.
   */
  useLatestWithMetadata?: Readonly<Record<string, string>>;
  /** `file:line` of the worker's `useLatestWithMetadata`, for plan errors that only the registry reveals. */
  location?: string;
}

export interface Topology {
  /** Absolute path of the topology file. */
  file: string;
  /** Key of the applied-state record (see topology/state.ts); the loader always sets it. */
  name?: string;
  topics: TopicSpec[];
  routes: RouteSpec[];
  workers: WorkerSpec[];
  /** RabbitMQ bridges (`sluice bridge <name>`); absent when the file declares none. */
  bridges?: BridgeSpec[];
}

export function subjectFor(topic: string): string {
  return `${topic}-value`;
}

export function topicByName(topology: Topology, name: string): TopicSpec | undefined {
  return topology.topics.find((t) => t.name === name);
}

export function topologyName(topology: Topology): string {
  return topology.name ?? 'topology';
}

/**
 * `bridges:` in the topology: RabbitMQ on either side of a Kafka topic.
 * - topic → exchange: `from: {topic}`, `to: {exchange, exchangeType, routingKey}`
 * - queue → topic: `from: {queue}`, `to: {topic, key}`, `deadLetter: <topic>`
 */

export type PayloadFormat = 'json' | 'avro';
export type ExchangeType = 'fanout' | 'direct' | 'topic' | 'headers';

export interface KafkaToAmqpBridge {
  name: string;
  direction: 'kafka-to-amqp';
  topic: string;
  exchange: string;
  exchangeType: ExchangeType;
  /** Fixed routing key; empty for fanout. */
  routingKey: string;
  /** json: the decoded event as JSON (default); avro: the Confluent-framed bytes as on the topic. */
  format: PayloadFormat;
  groupId: string;
  /** Where records that cannot be decoded go; without it such a record stops the bridge. */
  deadLetter?: string;
}

export interface AmqpToKafkaBridge {
  name: string;
  direction: 'amqp-to-kafka';
  queue: string;
  topic: string;
  /** Field of the event whose value is the Kafka key; unset: the `kafka-key` header, else no key. */
  key?: string;
  /** json: a JSON event, validated against the topic's schema; avro: Confluent-framed bytes, checked by decoding. */
  format: PayloadFormat;
  /** Kafka topic for messages that fail validation (original bytes, reason in headers). */
  deadLetter: string;
  prefetch: number;
}

export type BridgeSpec = KafkaToAmqpBridge | AmqpToKafkaBridge;
