import type { Message, Options } from 'amqplib';
import { stringifyJson } from '../../core/json.ts';
import { CORRELATION_HEADER, headersToStrings } from '../../consumers/headers.ts';
import type { RecordHeaders } from '../../kafka/index.ts';
import type { PayloadFormat } from '../../topology/model.ts';

/**
 * How a Kafka record becomes an AMQP message and back. Kafka's key, headers and
 * position travel as AMQP properties so a RabbitMQ consumer sees what a Kafka
 * consumer would: headers as AMQP headers, the key as `kafka-key`, the record's
 * `topic/partition/offset` as message-id (the same on a redelivery, so
 * consumers can deduplicate), correlation-id as correlationId.
 */

export const AMQP_HEADERS = {
  key: 'kafka-key',
  keyEncoding: 'kafka-key-encoding',
  topic: 'kafka-topic',
  partition: 'kafka-partition',
  offset: 'kafka-offset',
  schemaId: 'schema-id',
} as const;

export const CONTENT_TYPES: Record<PayloadFormat, string> = {
  json: 'application/json',
  avro: 'application/vnd.confluent.avro',
};

export interface KafkaRecordView {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

export interface AmqpOutgoing {
  content: Buffer;
  options: Options.Publish;
}

function isUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

/** `decoded` is the record's value read with its writer schema (format json); avro passes the bytes through. */
export function toAmqpMessage(record: KafkaRecordView, format: PayloadFormat, decoded?: { schemaId: number; value: unknown }): AmqpOutgoing {
  const kafkaHeaders = headersToStrings(record.headers);
  const headers: Record<string, string | number> = { ...kafkaHeaders, [AMQP_HEADERS.topic]: record.topic, [AMQP_HEADERS.partition]: record.partition, [AMQP_HEADERS.offset]: record.offset };
  if (record.key !== null) {
    // AMQP header strings are text: a binary key travels as base64 and says so.
    const text = isUtf8(record.key);
    headers[AMQP_HEADERS.key] = text ? record.key.toString('utf8') : record.key.toString('base64');
    if (!text) headers[AMQP_HEADERS.keyEncoding] = 'base64';
  }
  if (decoded) headers[AMQP_HEADERS.schemaId] = decoded.schemaId;
  const content = format === 'json' ? Buffer.from(stringifyJson(decoded?.value ?? null), 'utf8') : (record.value ?? Buffer.alloc(0));
  const correlationId = kafkaHeaders[CORRELATION_HEADER];
  return {
    content,
    options: {
      // Persistent + durable exchange/queues: a confirmed message survives a RabbitMQ restart.
      persistent: true,
      contentType: CONTENT_TYPES[format],
      messageId: `${record.topic}/${record.partition}/${record.offset}`,
      timestamp: Math.floor(Number(record.timestamp) / 1000),
      headers,
      ...(correlationId === undefined ? {} : { correlationId }),
    },
  };
}

function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return stringifyJson(value);
}

/** Kafka headers for a message coming from RabbitMQ: its AMQP headers as text, plus where it came from. */
export function kafkaHeadersFrom(message: Message, queue: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((message.properties.headers ?? {}) as Record<string, unknown>)) {
    if (name === AMQP_HEADERS.key || name === AMQP_HEADERS.keyEncoding) continue;
    const text = headerText(value);
    if (text !== undefined) out[name] = text;
  }
  const correlationId = headerText(message.properties.correlationId);
  if (correlationId !== undefined) out[CORRELATION_HEADER] = correlationId;
  const messageId = headerText(message.properties.messageId);
  if (messageId !== undefined) out['amqp-message-id'] = messageId;
  out['amqp-queue'] = queue;
  if (message.fields.exchange) out['amqp-exchange'] = message.fields.exchange;
  if (message.fields.routingKey) out['amqp-routing-key'] = message.fields.routingKey;
  return out;
}

/** The Kafka key: the configured field of the event, else the `kafka-key` header, else none. */
export function kafkaKeyFrom(message: Message, value: unknown, keyField: string | undefined): Buffer | null {
  if (keyField !== undefined && typeof value === 'object' && value !== null) {
    const field = (value as Record<string, unknown>)[keyField];
    if (field !== undefined && field !== null) return Buffer.from(typeof field === 'string' ? field : stringifyJson(field), 'utf8');
  }
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const key = headerText(headers[AMQP_HEADERS.key]);
  if (key === undefined) return null;
  return headers[AMQP_HEADERS.keyEncoding] === 'base64' ? Buffer.from(key, 'base64') : Buffer.from(key, 'utf8');
}
