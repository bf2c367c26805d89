import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { SluiceConfig } from '../../core/config.ts';
import { BridgeError, MalformedBodyError, isRetryable } from '../../core/errors.ts';
import { JsonTooDeepError, parseJson } from '../../core/json.ts';
import { retry, retryPolicies } from '../../core/retry.ts';
import { createKafka, type KafkaProducer, type OutgoingRecord, type RecordHeaders } from '../../kafka/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { createCodecEncoder, decodeFramed } from '../../core/serde.ts';
import { contextFromAmqpHeaders, startRecordSpan, type RecordSpan } from '../../core/tracing.ts';
import { DLQ_HEADERS, errorClassName, errorCodeOf, refuseReservedHeaders, renameReservedHeaders } from '../../consumers/headers.ts';
import { schemaTypeOf, valueCodec, type AmqpToKafkaBridge, type TopicSpec } from '../../topology/model.ts';
import { AmqpLink } from './link.ts';
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

interface AmqpToKafkaParts {
  spec: AmqpToKafkaBridge;
  log: Logger;
  registry: RegistryClient;
  amqpUrl: string;
  encoder: ReturnType<typeof createCodecEncoder>;
  producer: KafkaProducer;
  jsonMaxDepth: number;
}

/** A running RabbitMQ → Kafka bridge, one method per concern: receive, convert, forward, flush (or give back), reconnect, stop. */
class AmqpToKafka implements RunningBridge {
  readonly name: string;
  readonly #spec: AmqpToKafkaBridge;
  readonly #log: Logger;
  readonly #registry: RegistryClient;
  readonly #encoder: ReturnType<typeof createCodecEncoder>;
  readonly #producer: KafkaProducer;
  readonly #jsonMaxDepth: number;
  readonly #link: AmqpLink<{ channel: Channel; consumerTag: string }>;
  readonly #stats: BridgeStats = { forwarded: 0, deadLettered: 0, publishFailures: 0, reconnects: 0 };
  readonly #spanOptions;
  #pending: Delivery[] = [];
  #flushing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(parts: AmqpToKafkaParts) {
    this.name = parts.spec.name;
    this.#spec = parts.spec;
    this.#log = parts.log;
    this.#registry = parts.registry;
    this.#encoder = parts.encoder;
    this.#producer = parts.producer;
    this.#jsonMaxDepth = parts.jsonMaxDepth;
    this.#spanOptions = { destination: parts.spec.queue, system: 'rabbitmq', attributes: { 'sluice.bridge': parts.spec.name } } as const;
    this.#link = new AmqpLink(parts.amqpUrl, parts.log, {
      setup: (connection) => this.#subscribe(connection),
      teardown: async ({ channel, consumerTag }) => {
        await channel.cancel(consumerTag);
      },
    });
  }

  async start(): Promise<void> {
    await this.#link.get();
    const spec = this.#spec;
    this.#log.info({ queue: spec.queue, topic: spec.topic, deadLetter: spec.deadLetter, prefetch: spec.prefetch }, 'bridge running: RabbitMQ → Kafka');
  }

  stats(): BridgeStats {
    return { ...this.#stats, reconnects: Math.max(0, this.#link.connections - 1) };
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // Stop deliveries first, then let the last batch reach Kafka and be acked, then close.
      const current = await this.#link.get().catch(() => undefined);
      if (current) await current.channel.cancel(current.consumerTag).catch((error: unknown) => this.#log.warn({ err: error }, 'cancelling the consumer failed'));
      clearTimeout(this.#timer);
      this.#flushing = this.#flushing.then(() => this.#flush());
      await this.#flushing;
      this.#stopped = true;
      await this.#link.close();
      await this.#producer.close();
    })();
    return this.#stopping;
  }

  /** Declares the queue and consumes it on a fresh connection. */
  async #subscribe(connection: ChannelModel): Promise<{ channel: Channel; consumerTag: string }> {
    const spec = this.#spec;
    const channel = await connection.createChannel();
    const state = { closed: false };
    channel.on('close', () => (state.closed = true));
    channel.on('error', (error: Error) => this.#log.warn({ err: error }, 'RabbitMQ channel error'));
    await channel.assertQueue(spec.queue, { durable: true });
    await channel.prefetch(spec.prefetch);
    const { consumerTag } = await channel.consume(spec.queue, (message) => this.#receive(message, channel, state), { noAck: false });
    // A dropped connection should come back without waiting for someone to ask: nothing else asks on this side.
    connection.once('close', () => this.#reconnect());
    return { channel, consumerTag };
  }

  /** Queues a delivery for the next produce request: at once when a prefetch's worth is waiting, else after the linger. */
  #receive(message: ConsumeMessage | null, channel: Channel, state: { closed: boolean }): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted): reconnecting re-declares and re-subscribes.
      this.#log.warn({ queue: this.#spec.queue }, 'RabbitMQ cancelled the consumer; reconnecting');
      void this.#link.invalidate().then(() => this.#link.get());
      return;
    }
    this.#pending.push({ message, channel, link: state, span: startRecordSpan('forward', this.#spanOptions, () => contextFromAmqpHeaders(message.properties.headers)) });
    if (this.#pending.length >= this.#spec.prefetch) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flushing = this.#flushing.then(() => this.#flush());
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flushing = this.#flushing.then(() => this.#flush());
      }, LINGER_MS);
    }
  }

  /** A round of the link's policy; when one gives up (the link says why), the consumer starts another rather than stay away for good. */
  #reconnect(): void {
    if (this.#stopped) return;
    this.#link.get().catch((error: unknown) => {
      if (this.#stopped) return;
      this.#log.error({ err: error }, 'RabbitMQ reconnect gave up; starting another round');
      this.#reconnect();
    });
  }

  /** The event as Kafka bytes, or the reason it cannot be (a fatal error) ; registry outages are thrown to be retried. */
  async #convert(d: Delivery): Promise<{ value: Buffer; key: Buffer | null }> {
    const spec = this.#spec;
    if (spec.format === 'avro') {
      const decoded = await decodeFramed(this.#registry, d.message.content);
      return { value: d.message.content, key: kafkaKeyFrom(d.message, decoded.value, spec.key) };
    }
    let value: unknown;
    try {
      // Bounded as the ingress's bodies: JSON.parse's time grows with the nesting.
      value = parseJson(d.message.content.toString('utf8'), this.#jsonMaxDepth);
    } catch (error) {
      if (error instanceof JsonTooDeepError) throw new MalformedBodyError(`message ${error.message}`, error);
      throw new MalformedBodyError(`message is not JSON: ${(error as Error).message}`, error);
    }
    return { value: this.#encoder.encode(value), key: kafkaKeyFrom(d.message, value, spec.key) };
  }

  /** Produces the deliveries (dead-lettering the invalid ones), then acks them all. */
  async #forward(deliveries: Delivery[]): Promise<void> {
    const spec = this.#spec;
    const good: OutgoingRecord[] = [];
    const bad: OutgoingRecord[] = [];
    const failures = new Map<Delivery, unknown>();
    for (const d of deliveries) {
      const headers = kafkaHeadersFrom(d.message, spec.queue);
      try {
        // Reserved (`sluice.*`) headers are Sluice's alone: a message carrying one is refused to the dead-letter topic.
        refuseReservedHeaders(Object.keys(headers), `bridge ${spec.name}`);
        const { value, key } = await this.#convert(d);
        good.push(carried(d, { topic: spec.topic, key, value, headers: asRecordHeaders(headers) }));
      } catch (error) {
        if (isRetryable(error)) throw error;
        this.#log.warn({ err: error, messageId: d.message.properties.messageId as unknown }, 'invalid message dead-lettered');
        bad.push(carried(d, deadLetterFor(d, spec.deadLetter, spec.queue, error, headers)));
        if (d.span) failures.set(d, error);
      }
    }
    await this.#producer.send([...good, ...bad]);
    for (const d of deliveries) {
      try {
        d.channel.ack(d.message);
      } catch (error) {
        // The channel died after Kafka acknowledged: RabbitMQ redelivers, so this event will be on Kafka twice.
        this.#log.warn({ err: error }, 'cannot ack on a closed channel; RabbitMQ will redeliver');
      }
      if (failures.has(d)) d.span!.fail(failures.get(d));
      else d.span?.end();
    }
    this.#stats.forwarded += good.length;
    this.#stats.deadLettered += bad.length;
  }

  /**
   * Forwards what is pending by the `bridge` retry policy (messages stay unacked meanwhile). When it is spent,
   * the bridge gives up on this batch and says why: the messages go back to the queue to be delivered again,
   * instead of being retried forever.
   */
  async #flush(): Promise<void> {
    let deliveries = this.#pending;
    this.#pending = [];
    try {
      await retry(
        retryPolicies.bridge,
        async () => {
          deliveries = live(deliveries);
          if (deliveries.length === 0) return;
          if (this.#stopped) {
            for (const d of deliveries) d.span?.end();
            return;
          }
          await this.#forward(deliveries);
        },
        {
          retryable: () => !this.#stopped,
          onRetry: (error, attempt, delay) => {
            this.#stats.publishFailures++;
            this.#log.warn({ err: error, messages: deliveries.length, retryInMs: delay }, 'producing to Kafka failed; retrying (messages stay unacked)');
            for (const d of deliveries) d.span?.retrying(attempt, error);
          },
        },
      );
    } catch (error) {
      this.#stats.publishFailures++;
      this.#giveBack(live(deliveries), error);
    }
  }

  /** After the policy gave up: nack with requeue (unacked, they go back anyway once a stopping bridge's channel closes). */
  #giveBack(deliveries: Delivery[], error: unknown): void {
    if (this.#stopped) {
      for (const d of deliveries) d.span?.end();
      return;
    }
    const policy = retryPolicies.bridge;
    this.#log.error(
      { err: error, messages: deliveries.length },
      `producing to Kafka failed ${policy.retries + 1} times (the ${policy.name} retry policy); giving up on these messages: back to the queue`,
    );
    for (const d of deliveries) {
      try {
        d.channel.nack(d.message, false, true);
      } catch (nackError) {
        // A closed channel has put them back already.
        this.#log.debug({ err: nackError }, 'cannot nack on a closed channel; RabbitMQ requeues on its own');
      }
      d.span?.fail(error);
    }
  }
}

/** Deliveries of a closed channel are already back in the queue: producing them too would only duplicate them. */
function live(deliveries: Delivery[]): Delivery[] {
  return deliveries.filter((d) => {
    if (d.link.closed) d.span?.end(); // Its redelivery is forwarded in a span of its own.
    return !d.link.closed;
  });
}

export async function startAmqpToKafka(options: AmqpToKafkaOptions): Promise<RunningBridge> {
  const { config, spec, registry, topic } = options;
  const log = options.logger;
  const valueSchema = topic.valueSchema;
  if (!valueSchema) throw new BridgeError(`bridge ${spec.name}: topic ${topic.name} has no value schema`);
  const schemaId = await registry.register(valueSchema.subject, valueSchema.text, { schemaType: schemaTypeOf(valueSchema) });
  const encoder = createCodecEncoder(valueSchema.subject, schemaId, valueCodec(valueSchema));
  const kafka = createKafka(config, log, `bridge-${spec.name}`);
  // Idempotent, acks=all; keyed records land where Kafka's default partitioner puts them.
  const producer = kafka.producer({ name: `bridge-${spec.name}` });
  await producer.connect([spec.topic, spec.deadLetter]);
  const bridge = new AmqpToKafka({ spec, log, registry, amqpUrl: config.amqpUrl, encoder, producer, jsonMaxDepth: config.jsonMaxDepth });
  await bridge.start();
  return bridge;
}
