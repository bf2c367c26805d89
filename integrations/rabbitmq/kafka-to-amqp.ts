import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel } from 'amqplib';
import type { SluiceConfig } from '../../core/config.ts';
import { BridgeError, isRetryable } from '../../core/errors.ts';
import { createKafka, type GroupBatch, type KafkaProducer, type KafkaRecord } from '../../kafka/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { decodeFramed } from '../../core/serde.ts';
import { startKafkaRecordSpan, type RecordSpan } from '../../core/tracing.ts';
import { deadLetterRecord } from '../../consumers/headers.ts';
import type { KafkaToAmqpBridge } from '../../topology/model.ts';
import { AmqpLink, backoffDelay } from './link.ts';
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

const BACKOFF = { initialMs: 250, maxMs: 10_000 };

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

export async function startKafkaToAmqp(options: KafkaToAmqpOptions): Promise<RunningBridge> {
  const { config, spec, registry } = options;
  const log = options.logger;
  const stats: BridgeStats = { forwarded: 0, deadLettered: 0, publishFailures: 0, reconnects: 0 };
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
  let stopped = false;
  const running = () => !stopped;
  const spanAttributes = { 'sluice.bridge': spec.name, 'messaging.rabbitmq.exchange': spec.exchange };

  /** `spans` gets the span of every record to publish; a dead-lettered record's span has failed already. */
  const decode = async (batch: GroupBatch, spans: RecordSpan[]): Promise<{ out: AmqpOutgoing[]; dead: number }> => {
    const out: AmqpOutgoing[] = [];
    const dead: { source: KafkaRecord; error: unknown; span: RecordSpan | undefined }[] = [];
    for (const message of batch.records) {
      const span = startKafkaRecordSpan('forward', message, spanAttributes);
      // The message carries the forward span's trace headers, not the record's.
      const record = { ...message, offset: message.offset.toString(), timestamp: message.timestamp.toString(), headers: span ? span.carry(message.headers) : message.headers };
      if (span) spans.push(span);
      if (spec.format === 'avro') {
        out.push(toAmqpMessage(record, 'avro'));
        continue;
      }
      for (let attempt = 0; ; attempt++) {
        try {
          out.push(toAmqpMessage(record, 'json', await decodeFramed(registry, message.value)));
          break;
        } catch (error) {
          if (isRetryable(error) && running()) {
            log.warn({ err: error, offset: record.offset }, 'registry unavailable while decoding; retrying');
            span?.retrying(attempt + 1, error);
            await sleep(backoffDelay(attempt, BACKOFF));
            continue;
          }
          if (isRetryable(error)) throw error;
          if (!spec.deadLetter) {
            throw new BridgeError(`${batch.topic}/${batch.partition}@${record.offset} cannot be decoded and bridge ${spec.name} has no deadLetter topic: ${(error as Error).message}`, {
              cause: error,
            });
          }
          log.warn({ err: error, partition: batch.partition, offset: record.offset }, 'undecodable record dead-lettered');
          if (span) {
            // The last one pushed: it ends here, failed, rather than once RabbitMQ confirmed the batch.
            spans.pop();
            span.fail(error);
          }
          dead.push({ source: message, error, span });
          break;
        }
      }
    }
    if (dead.length > 0 && dlq && spec.deadLetter) {
      const now = new Date();
      await dlq.send(
        dead.map((d) => {
          const letter = deadLetterRecord(d.source, spec.deadLetter!, d.error, now);
          return d.span ? { ...letter, headers: d.span.carry(letter.headers!) } : letter;
        }),
      );
    }
    return { out, dead: dead.length };
  };

  /** Publishes the batch and waits for RabbitMQ's confirms, republishing on any failure until the bridge stops. */
  const publish = async (batch: GroupBatch, out: AmqpOutgoing[], spans: RecordSpan[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (!running()) throw new BridgeError('the bridge is stopping', { retryable: true }); // Not committed: the next owner starts over from the last commit.
      try {
        const channel = await link.get();
        for (const m of out) {
          if (!channel.publish(spec.exchange, spec.routingKey, m.content, m.options)) await waitForDrain(channel);
        }
        // Rejects on any nack and when the channel closes with messages unconfirmed.
        await channel.waitForConfirms();
        return;
      } catch (error) {
        stats.publishFailures++;
        const delay = backoffDelay(attempt, BACKOFF);
        log.warn({ err: error, partition: batch.partition, retryInMs: delay }, 'publishing to RabbitMQ failed; republishing the batch after reconnecting');
        for (const span of spans) span.retrying(attempt + 1, error);
        await link.invalidate();
        await sleep(delay);
      }
    }
  };

  await consumer.start({
    // A rejection rewinds the partition to its committed offset: the batch is published again.
    batch: async (batch) => {
      // Stays empty with tracing off.
      const spans: RecordSpan[] = [];
      let forwarded: { out: AmqpOutgoing[]; dead: number };
      try {
        forwarded = await decode(batch, spans);
        await publish(batch, forwarded.out, spans);
      } catch (error) {
        // The batch is read again (by this member or the next owner), in new spans.
        for (const span of spans) span.fail(error);
        throw error;
      }
      for (const span of spans) span.end();
      const { out, dead } = forwarded;
      // Committed only after RabbitMQ confirmed every message of the batch.
      const last = batch.records.at(-1)!;
      await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1n, leaderEpoch: batch.leaderEpoch }]);
      stats.forwarded += out.length;
      stats.deadLettered += dead;
    },
  });
  log.info({ topic: spec.topic, exchange: spec.exchange, groupId: spec.groupId }, 'bridge running: Kafka → RabbitMQ');

  let stopping: Promise<void> | undefined;
  return {
    name: spec.name,
    stats: () => ({ ...stats, reconnects: Math.max(0, link.connections - 1) }),
    stop() {
      stopping ??= (async () => {
        stopped = true;
        await consumer.close();
        await dlq?.close();
        await link.close();
      })();
      return stopping;
    },
  };
}
