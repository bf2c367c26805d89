import type { ConfirmChannel } from 'amqplib';
import type { SluiceConfig } from '../../core/config.ts';
import { BridgeError, describeCause, isRetryable } from '../../core/errors.ts';
import { retry, retryPolicies } from '../../core/retry.ts';
import { createKafka, type GroupBatch, type GroupConsumer, type KafkaProducer, type KafkaRecord } from '../../kafka/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { decodeFramed } from '../../core/serde.ts';
import { startKafkaRecordSpan, type RecordSpan } from '../../core/tracing.ts';
import { deadLetterRecord } from '../../consumers/headers.ts';
import type { KafkaToAmqpBridge } from '../../topology/model.ts';
import { AmqpLink } from './link.ts';
import { toAmqpMessage, type AmqpOutgoing } from './payload.ts';
import type { BridgeStats, RunningBridge } from './running.ts';

/**
 * Kafka topic → RabbitMQ exchange, at least once: each batch of a partition is
 * published on a confirm channel, and the partition's offset is committed only
 * after RabbitMQ confirmed every message of the batch. Anything that fails in
 * between (RabbitMQ restarts, the channel dies, a nack) republishes the batch,
 * so a consumer may see a message twice, never zero times; message-id
 * (`topic/partition/offset`) is the same both times.
 *
 * With tracing on, each record is forwarded in a `forward <topic>` span that
 * continues the trace its headers carry, ended once RabbitMQ confirmed it; the
 * AMQP message (or the dead letter) carries that span's trace headers.
 */

export interface KafkaToAmqpOptions {
  config: SluiceConfig;
  logger: Logger;
  spec: KafkaToAmqpBridge;
  registry: RegistryClient;
}

function waitForDrain(channel: ConfirmChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      channel.off('drain', onDrain);
      channel.off('close', onClose);
    };
    const onDrain = () => {
      done();
      resolve();
    };
    const onClose = () => {
      done();
      reject(new BridgeError('RabbitMQ channel closed while waiting for it to drain', { retryable: true }));
    };
    channel.once('drain', onDrain);
    channel.once('close', onClose);
  });
}

type DeadRecord = { source: KafkaRecord; error: unknown; span: RecordSpan | undefined };

interface KafkaToAmqpParts {
  spec: KafkaToAmqpBridge;
  log: Logger;
  registry: RegistryClient;
  link: AmqpLink<ConfirmChannel>;
  consumer: GroupConsumer;
  dlq: KafkaProducer | undefined;
}

/** A running Kafka → RabbitMQ bridge, one method per concern: forward a batch, decode it, dead-letter, publish, commit, stop. */
class KafkaToAmqp implements RunningBridge {
  readonly name: string;
  readonly #spec: KafkaToAmqpBridge;
  readonly #log: Logger;
  readonly #registry: RegistryClient;
  readonly #link: AmqpLink<ConfirmChannel>;
  readonly #consumer: GroupConsumer;
  readonly #dlq: KafkaProducer | undefined;
  readonly #stats: BridgeStats = { forwarded: 0, deadLettered: 0, publishFailures: 0, reconnects: 0 };
  readonly #spanAttributes: Record<string, string>;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(parts: KafkaToAmqpParts) {
    this.name = parts.spec.name;
    this.#spec = parts.spec;
    this.#log = parts.log;
    this.#registry = parts.registry;
    this.#link = parts.link;
    this.#consumer = parts.consumer;
    this.#dlq = parts.dlq;
    this.#spanAttributes = { 'sluice.bridge': parts.spec.name, 'messaging.rabbitmq.exchange': parts.spec.exchange };
  }

  async start(): Promise<void> {
    // A rejection rewinds the partition to its committed offset: the batch is published again.
    await this.#consumer.start({ batch: (batch) => this.#forward(batch) });
    const spec = this.#spec;
    this.#log.info({ topic: spec.topic, exchange: spec.exchange, groupId: spec.groupId }, 'bridge running: Kafka → RabbitMQ');
  }

  stats(): BridgeStats {
    return { ...this.#stats, reconnects: Math.max(0, this.#link.connections - 1) };
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      await this.#consumer.close();
      await this.#dlq?.close();
      await this.#link.close();
    })();
    return this.#stopping;
  }

  #running(): boolean {
    return !this.#stopped;
  }

  /** One batch across: decoded, published and confirmed, then its offset committed. */
  async #forward(batch: GroupBatch): Promise<void> {
    // Stays empty with tracing off.
    const spans: RecordSpan[] = [];
    let forwarded: { out: AmqpOutgoing[]; dead: number };
    try {
      forwarded = await this.#decode(batch, spans);
      await this.#publish(batch, forwarded.out, spans);
    } catch (error) {
      // The batch is read again (by this member or the next owner), in new spans.
      for (const span of spans) span.fail(error);
      throw error;
    }
    for (const span of spans) span.end();
    const { out, dead } = forwarded;
    // Committed only after RabbitMQ confirmed every message of the batch.
    const last = batch.records.at(-1)!;
    await this.#consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1n, leaderEpoch: batch.leaderEpoch }]);
    this.#stats.forwarded += out.length;
    this.#stats.deadLettered += dead;
  }

  /** `spans` gets the span of every record to publish; a dead-lettered record's span has failed already. */
  async #decode(batch: GroupBatch, spans: RecordSpan[]): Promise<{ out: AmqpOutgoing[]; dead: number }> {
    const out: AmqpOutgoing[] = [];
    const dead: DeadRecord[] = [];
    for (const message of batch.records) {
      const span = startKafkaRecordSpan('forward', message, this.#spanAttributes);
      // The message carries the forward span's trace headers, not the record's.
      const record = { ...message, offset: message.offset.toString(), timestamp: message.timestamp.toString(), headers: span ? span.carry(message.headers) : message.headers };
      if (span) spans.push(span);
      if (this.#spec.format === 'avro') {
        out.push(toAmqpMessage(record, 'avro'));
        continue;
      }
      try {
        out.push(toAmqpMessage(record, 'json', await this.#decodeValue(message, record.offset, span)));
      } catch (error) {
        if (isRetryable(error)) throw error;
        if (!this.#spec.deadLetter) {
          throw new BridgeError(`${batch.topic}/${batch.partition}@${record.offset} cannot be decoded and bridge ${this.#spec.name} has no deadLetter topic: ${(error as Error).message}`, {
            cause: error,
          });
        }
        this.#log.warn({ err: error, partition: batch.partition, offset: record.offset }, 'undecodable record dead-lettered');
        if (span) {
          // The last one pushed: it ends here, failed, rather than once RabbitMQ confirmed the batch.
          spans.pop();
          span.fail(error);
        }
        dead.push({ source: message, error, span });
      }
    }
    await this.#deadLetter(dead);
    return { out, dead: dead.length };
  }

  /** A record's value; a registry outage is retried by the `bridge` policy, past it (or once the bridge stops) the batch is read again from its commit. */
  async #decodeValue(message: KafkaRecord, offset: string, span: RecordSpan | undefined): ReturnType<typeof decodeFramed> {
    try {
      return await retry(retryPolicies.bridge, () => decodeFramed(this.#registry, message.value), {
        retryable: (error) => isRetryable(error) && this.#running(),
        onRetry: (error, attempt) => {
          this.#log.warn({ err: error, offset }, 'registry unavailable while decoding; retrying');
          span?.retrying(attempt, error);
        },
      });
    } catch (error) {
      if (isRetryable(error) && this.#running()) {
        this.#log.error({ err: error, offset }, `the registry stayed unavailable for ${retryPolicies.bridge.retries + 1} attempts; giving up on this batch, read again from its last commit`);
      }
      throw error;
    }
  }

  async #deadLetter(dead: DeadRecord[]): Promise<void> {
    const topic = this.#spec.deadLetter;
    if (dead.length === 0 || !this.#dlq || !topic) return;
    const now = new Date();
    await this.#dlq.send(
      dead.map((d) => {
        const letter = deadLetterRecord(d.source, topic, d.error, now);
        return d.span ? { ...letter, headers: d.span.carry(letter.headers!) } : letter;
      }),
    );
  }

  /**
   * Publishes the batch and waits for RabbitMQ's confirms, republishing on any failure by the `bridge` retry policy.
   * Past it the bridge gives up on this batch and says why; not committed, it is read again from the last commit.
   */
  async #publish(batch: GroupBatch, out: AmqpOutgoing[], spans: RecordSpan[]): Promise<void> {
    const spec = this.#spec;
    const policy = retryPolicies.bridge;
    try {
      await retry(
        policy,
        async () => {
          if (!this.#running()) throw new BridgeError('the bridge is stopping', { retryable: true }); // Not committed: the next owner starts over from the last commit.
          const channel = await this.#link.get();
          for (const m of out) {
            if (!channel.publish(spec.exchange, spec.routingKey, m.content, m.options)) await waitForDrain(channel);
          }
          // Rejects on any nack and when the channel closes with messages unconfirmed.
          await channel.waitForConfirms();
        },
        {
          retryable: () => this.#running(),
          onRetry: async (error, attempt, delay) => {
            this.#stats.publishFailures++;
            this.#log.warn({ err: error, partition: batch.partition, retryInMs: delay }, 'publishing to RabbitMQ failed; republishing the batch after reconnecting');
            for (const span of spans) span.retrying(attempt, error);
            await this.#link.invalidate();
          },
        },
      );
    } catch (error) {
      if (!this.#running()) throw error;
      this.#stats.publishFailures++;
      await this.#link.invalidate();
      const why = `publishing to RabbitMQ failed ${policy.retries + 1} times (the ${policy.name} retry policy); giving up on this batch of ${batch.topic}/${batch.partition}, read again from its last commit: ${describeCause(error)}`;
      this.#log.error({ err: error }, why);
      throw new BridgeError(why, { retryable: true, cause: error });
    }
  }
}

export async function startKafkaToAmqp(options: KafkaToAmqpOptions): Promise<RunningBridge> {
  const { config, spec, registry } = options;
  const log = options.logger;
  const link = new AmqpLink<ConfirmChannel>(config.amqpUrl, log, {
    async setup(connection) {
      const channel = await connection.createConfirmChannel();
      channel.on('error', (error: Error) => log.warn({ err: error }, 'RabbitMQ channel error'));
      await channel.assertExchange(spec.exchange, spec.exchangeType, { durable: true });
      return channel;
    },
  });
  // Fail fast on a wrong URL or credentials at start; later outages are waited out.
  await link.get();

  const kafka = createKafka(config, log, `bridge-${spec.name}`);
  const consumer = kafka.groupConsumer({
    groupId: spec.groupId,
    topics: [spec.topic],
    protocol: config.workerGroupProtocol,
    sessionTimeoutMs: config.workerSessionTimeoutMs,
    heartbeatIntervalMs: Math.max(1000, Math.floor(config.workerSessionTimeoutMs / 3)),
    concurrency: 8,
    // A new group starts from the beginning: events emitted before the bridge first ran are forwarded too.
    fallback: 'earliest',
    maxWaitMs: 1000,
  });
  let dlq: KafkaProducer | undefined;
  if (spec.deadLetter) {
    dlq = kafka.producer({ name: `bridge-${spec.name}-dlq` });
    await dlq.connect([spec.deadLetter]);
  }
  const bridge = new KafkaToAmqp({ spec, log, registry, link, consumer, dlq });
  await bridge.start();
  return bridge;
}
