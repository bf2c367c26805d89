import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { SluiceConfig } from '../../core/config.ts';
import { BridgeError, MalformedBodyError, isRetryable } from '../../core/errors.ts';
import { JsonTooDeepError, parseJson } from '../../core/json.ts';
import { createKafka, type OutgoingRecord, type RecordHeaders } from '../../kafka/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { createCodecEncoder, decodeFramed } from '../../core/serde.ts';
import { contextFromAmqpHeaders, startRecordSpan, type RecordSpan } from '../../core/tracing.ts';
import { DLQ_HEADERS, errorClassName, errorCodeOf, refuseReservedHeaders, renameReservedHeaders } from '../../consumers/headers.ts';
import { schemaTypeOf, valueCodec, type AmqpToKafkaBridge, type TopicSpec } from '../../topology/model.ts';
import { AmqpLink, backoffDelay } from './link.ts';
import { kafkaHeadersFrom, kafkaKeyFrom } from './payload.ts';
import type { BridgeStats, RunningBridge } from './running.ts';

/**
 * RabbitMQ queue → Kafka topic, at least once: messages are consumed with
 * manual acks (at most `prefetch` unacknowledged), checked against the topic's
 * Avro schema, produced by an idempotent producer with acks=all, and acked to
 * RabbitMQ only once Kafka acknowledged them. A message that fails the check goes
 * to the bridge's dead-letter *Kafka topic* (the same place the workers' dead
 * letters go) with its original bytes and headers naming the reason, then is
 * acked. A message carrying a header reserved for Sluice (`sluice.*`) is refused
 * the same way, the reserved headers kept in the dead letter under
 * `refused-header.<name>`. If the RabbitMQ connection drops before the ack, RabbitMQ redelivers
 * and the event may be on Kafka twice; it is never dropped.
 *
 * With tracing on, each message is forwarded in a `forward <queue>` span that
 * continues the trace its AMQP headers carry, ended once Kafka acknowledged
 * it; the record (or the dead letter) carries that span's trace headers.
 */

export interface AmqpToKafkaOptions {
  config: SluiceConfig;
  logger: Logger;
  spec: AmqpToKafkaBridge;
  topic: TopicSpec;
  registry: RegistryClient;
}

const BACKOFF = { initialMs: 250, maxMs: 10_000 };
/** Messages arriving within this window share one produce request. */
const LINGER_MS = 5;

interface Delivery {
  message: ConsumeMessage;
  /** The channel it came on: an ack must go back on the same one. */
  channel: Channel;
  link: { closed: boolean };
  /** Its `forward` span; undefined with tracing off. */
  span: RecordSpan | undefined;
}

const MAX_REASON = 4096;

function asRecordHeaders(headers: Record<string, string>): RecordHeaders {
  return Object.entries(headers).map(([name, value]) => [name, Buffer.from(value, 'utf8')] as const);
}

/** `record` with the trace headers of `d`'s span instead of those it copied from the AMQP message. */
function carried(d: Delivery, record: OutgoingRecord): OutgoingRecord {
  return d.span ? { ...record, headers: d.span.carry(record.headers ?? []) } : record;
}

function deadLetterFor(d: Delivery, topic: string, queue: string, error: unknown, headers: Record<string, string>): OutgoingRecord {
  const reason = error instanceof Error ? error.message : String(error);
  const code = errorCodeOf(error);
  const out: Record<string, string> = {
    // Renamed, not copied: a forged sluice.original.topic must not choose where a replay writes.
    ...renameReservedHeaders(headers),
    [DLQ_HEADERS.errorClass]: errorClassName(error),
    ...(code === undefined ? {} : { [DLQ_HEADERS.errorCode]: code }),
    [DLQ_HEADERS.errorMessage]: reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason,
    'sluice.original.queue': queue,
    [DLQ_HEADERS.failedAt]: new Date().toISOString(),
  };
  return { topic, key: null, value: d.message.content, headers: asRecordHeaders(out) };
}

export async function startAmqpToKafka(options: AmqpToKafkaOptions): Promise<RunningBridge> {
  const { config, spec, registry, topic } = options;
  const log = options.logger;
  const valueSchema = topic.valueSchema;
  if (!valueSchema) throw new BridgeError(`bridge ${spec.name}: topic ${topic.name} has no value schema`);
  const schemaId = await registry.register(valueSchema.subject, valueSchema.text, { schemaType: schemaTypeOf(valueSchema) });
  const encoder = createCodecEncoder(valueSchema.subject, schemaId, valueCodec(valueSchema));
  const stats: BridgeStats = { forwarded: 0, deadLettered: 0, publishFailures: 0, reconnects: 0 };

  const kafka = createKafka(config, log, `bridge-${spec.name}`);
  // Idempotent, acks=all; keyed records land where Kafka's default partitioner puts them.
  const producer = kafka.producer({ name: `bridge-${spec.name}` });
  await producer.connect([spec.topic, spec.deadLetter]);

  let pending: Delivery[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const spanOptions = { destination: spec.queue, system: 'rabbitmq', attributes: { 'sluice.bridge': spec.name } } as const;

  /** The event as Kafka bytes, or the reason it cannot be (a fatal error) ; registry outages are thrown to be retried. */
  const convert = async (d: Delivery): Promise<{ value: Buffer; key: Buffer | null }> => {
    if (spec.format === 'avro') {
      const decoded = await decodeFramed(registry, d.message.content);
      return { value: d.message.content, key: kafkaKeyFrom(d.message, decoded.value, spec.key) };
    }
    let value: unknown;
    try {
      // Bounded as the ingress's bodies: JSON.parse's time grows with the nesting.
      value = parseJson(d.message.content.toString('utf8'), config.jsonMaxDepth);
    } catch (error) {
      if (error instanceof JsonTooDeepError) throw new MalformedBodyError(`message ${error.message}`, error);
      throw new MalformedBodyError(`message is not JSON: ${(error as Error).message}`, error);
    }
    return { value: encoder.encode(value), key: kafkaKeyFrom(d.message, value, spec.key) };
  };

  const flush = async (): Promise<void> => {
    let deliveries = pending;
    pending = [];
    for (let attempt = 0; ; attempt++) {
      // Deliveries of a closed channel are already back in the queue: producing them too would only duplicate them.
      const live: Delivery[] = [];
      for (const d of deliveries) {
        if (!d.link.closed) live.push(d);
        else d.span?.end(); // Its redelivery is forwarded in a span of its own.
      }
      deliveries = live;
      if (deliveries.length === 0) return;
      if (stopped) {
        for (const d of deliveries) d.span?.end();
        return;
      }
      try {
        const good: OutgoingRecord[] = [];
        const bad: OutgoingRecord[] = [];
        const failures = new Map<Delivery, unknown>();
        for (const d of deliveries) {
          const headers = kafkaHeadersFrom(d.message, spec.queue);
          try {
            // Reserved (`sluice.*`) headers are Sluice's alone: a message carrying one is refused to the dead-letter topic.
            refuseReservedHeaders(Object.keys(headers), `bridge ${spec.name}`);
            const { value, key } = await convert(d);
            good.push(carried(d, { topic: spec.topic, key, value, headers: asRecordHeaders(headers) }));
          } catch (error) {
            if (isRetryable(error)) throw error;
            log.warn({ err: error, messageId: d.message.properties.messageId as unknown }, 'invalid message dead-lettered');
            bad.push(carried(d, deadLetterFor(d, spec.deadLetter, spec.queue, error, headers)));
            if (d.span) failures.set(d, error);
          }
        }
        await producer.send([...good, ...bad]);
        for (const d of deliveries) {
          try {
            d.channel.ack(d.message);
          } catch (error) {
            // The channel died after Kafka acknowledged: RabbitMQ redelivers, so this event will be on Kafka twice.
            log.warn({ err: error }, 'cannot ack on a closed channel; RabbitMQ will redeliver');
          }
          if (failures.has(d)) d.span!.fail(failures.get(d));
          else d.span?.end();
        }
        stats.forwarded += good.length;
        stats.deadLettered += bad.length;
        return;
      } catch (error) {
        stats.publishFailures++;
        const delay = backoffDelay(attempt, BACKOFF);
        log.warn({ err: error, messages: deliveries.length, retryInMs: delay }, 'producing to Kafka failed; retrying (messages stay unacked)');
        for (const d of deliveries) d.span?.retrying(attempt + 1, error);
        await sleep(delay);
      }
    }
  };

  const schedule = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      flushing = flushing.then(flush);
    }, LINGER_MS);
  };

  const link = new AmqpLink<{ channel: Channel; consumerTag: string }>(config.amqpUrl, log, {
    async setup(connection) {
      const channel = await connection.createChannel();
      const state = { closed: false };
      channel.on('close', () => (state.closed = true));
      channel.on('error', (error: Error) => log.warn({ err: error }, 'RabbitMQ channel error'));
      await channel.assertQueue(spec.queue, { durable: true });
      await channel.prefetch(spec.prefetch);
      const { consumerTag } = await channel.consume(
        spec.queue,
        (message) => {
          if (message === null) {
            // The broker cancelled the consumer (queue deleted): reconnecting re-declares and re-subscribes.
            log.warn({ queue: spec.queue }, 'RabbitMQ cancelled the consumer; reconnecting');
            void link.invalidate().then(() => link.get());
            return;
          }
          pending.push({ message, channel, link: state, span: startRecordSpan('forward', spanOptions, () => contextFromAmqpHeaders(message.properties.headers)) });
          if (pending.length >= spec.prefetch) {
            clearTimeout(timer);
            timer = undefined;
            flushing = flushing.then(flush);
          } else schedule();
        },
        { noAck: false },
      );
      // A dropped connection should come back without waiting for someone to ask.
      connection.once('close', () => {
        if (!stopped) void link.get().catch((error: unknown) => log.error({ err: error }, 'RabbitMQ reconnect gave up'));
      });
      return { channel, consumerTag };
    },
    async teardown({ channel, consumerTag }) {
      await channel.cancel(consumerTag);
    },
  });
  await link.get();
  log.info({ queue: spec.queue, topic: spec.topic, deadLetter: spec.deadLetter, prefetch: spec.prefetch }, 'bridge running: RabbitMQ → Kafka');

  let stopping: Promise<void> | undefined;
  return {
    name: spec.name,
    stats: () => ({ ...stats, reconnects: Math.max(0, link.connections - 1) }),
    stop() {
      stopping ??= (async () => {
        // Stop deliveries first, then let the last batch reach Kafka and be acked, then close.
        const current = await link.get().catch(() => undefined);
        if (current) await current.channel.cancel(current.consumerTag).catch((error: unknown) => log.warn({ err: error }, 'cancelling the consumer failed'));
        clearTimeout(timer);
        flushing = flushing.then(flush);
        await flushing;
        stopped = true;
        await link.close();
        await producer.close();
      })();
      return stopping;
    },
  };
}
