import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Schema } from 'avsc';
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { startAmqpToKafka } from '../../integrations/rabbitmq/amqp-to-kafka.ts';
import type { RunningBridge } from '../../integrations/rabbitmq/running.ts';
import { subjectFor, type TopicSpec } from '../../topology/model.ts';
import { createTopics, uniqueName } from './platform.ts';
import { collect, type Collector } from './workers.ts';

/** The RabbitMQ on the machine (SLUICE_AMQP_URL or guest@127.0.0.1:5672), as tests use it. */

export const AMQP_URL = process.env.SLUICE_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const hasRabbitmqctl = (() => {
  const result = spawnSync('rabbitmqctl', ['--help'], { stdio: 'ignore' });
  return !result.error;
})();

export async function rabbitAnswers(): Promise<boolean> {
  try {
    const c = await connect(AMQP_URL, { timeout: 2000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

export async function waitForRabbit(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await rabbitAnswers()) return;
    await sleep(250);
  }
  throw new Error(`RabbitMQ at ${AMQP_URL} did not come back within ${timeoutMs} ms`);
}

export function rabbitmqctl(...args: string[]): void {
  const result = spawnSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${result.stdout}${result.stderr}`);
}

/**
 * A consumer of one durable queue that survives RabbitMQ restarts (it
 * reconnects) and keeps everything it received, acked after it is recorded.
 */
export interface QueueReader {
  received: ConsumeMessage[];
  waitFor(done: (messages: ConsumeMessage[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

export async function readQueue(queue: string, bind?: { exchange: string; type: string }): Promise<QueueReader> {
  const received: ConsumeMessage[] = [];
  let connection: ChannelModel | undefined;
  let closed = false;
  const open = async (): Promise<void> => {
    while (!closed) {
      try {
        const c = await connect(AMQP_URL, { timeout: 2000 });
        c.on('error', () => undefined);
        c.on('close', () => {
          if (!closed) void open();
        });
        const channel = await c.createChannel();
        if (bind) {
          await channel.assertExchange(bind.exchange, bind.type, { durable: true });
          await channel.assertQueue(queue, { durable: true });
          await channel.bindQueue(queue, bind.exchange, '');
        } else await channel.assertQueue(queue, { durable: true });
        await channel.consume(queue, (m) => {
          if (!m) return;
          received.push(m);
          channel.ack(m);
        });
        connection = c;
        return;
      } catch {
        await sleep(250);
      }
    }
  };
  await open();
  return {
    received,
    async waitFor(done, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!done(received)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${received.length})`);
        await sleep(50);
      }
    },
    async close() {
      closed = true;
      await connection?.close().catch(() => undefined);
    },
  };
}

/** Deletes test exchanges and queues (best effort: a test that failed half-way may not have made them all). */
export async function cleanupAmqp(exchanges: string[], queues: string[]): Promise<void> {
  const c = await connect(AMQP_URL);
  try {
    for (const q of queues) {
      const ch = await c.createChannel();
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const e of exchanges) {
      const ch = await c.createChannel();
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await c.close();
  }
}

/** A topology topic of three partitions whose values follow `avsc` (a file of schemas/). */
export function topicSpec(name: string, avsc: string): TopicSpec {
  const file = `${PROJECT_ROOT}/schemas/${avsc}`;
  const schema = JSON.parse(readFileSync(file, 'utf8')) as Schema;
  return { name, partitions: 3, replicationFactor: 1, configs: {}, valueSchema: { file, subject: subjectFor(name), schema, text: JSON.stringify(schema) } };
}

export interface QueueBridgeOptions {
  config: SluiceConfig;
  logger: Logger;
  registry: RegistryClient;
  /** The bridge's name; its queue is named after it. */
  name: string;
  /** Prefix of the (OrderPlaced) topic's name and of its dead-letter topic's. */
  topicPrefix: string;
  partitions: number;
  prefetch: number;
  /** The test's list of queues to delete afterwards; the bridge's queue is added to it. */
  queues: string[];
}

/** A RabbitMQ queue → Kafka bridge (JSON, keyed by orderId) running, with a collector on its topic and dead-letter topic, and a connection to publish with. */
export interface QueueBridge {
  topic: TopicSpec;
  dlq: string;
  queue: string;
  bridge: RunningBridge;
  collector: Collector;
  connection: ChannelModel;
  /** Closes the connection, stops the bridge and the collector. */
  close(): Promise<void>;
}

export async function queueBridge(options: QueueBridgeOptions): Promise<QueueBridge> {
  const { config, logger, registry, name, topicPrefix, partitions, prefetch } = options;
  const topic = topicSpec(uniqueName(topicPrefix), 'OrderPlaced.avsc');
  const dlq = uniqueName(`${topicPrefix}.dlq`);
  const queue = uniqueName(name);
  options.queues.push(queue);
  await createTopics([
    { topic: topic.name, numPartitions: partitions },
    { topic: dlq, numPartitions: 1 },
  ]);
  const collector = await collect([topic.name, dlq]);
  const bridge = await startAmqpToKafka({
    config,
    logger,
    registry,
    topic,
    spec: { name, direction: 'amqp-to-kafka', queue, topic: topic.name, key: 'orderId', format: 'json', deadLetter: dlq, prefetch },
  });
  const connection = await connect(AMQP_URL);
  return {
    topic,
    dlq,
    queue,
    bridge,
    collector,
    connection,
    async close() {
      await connection.close();
      await bridge.stop();
      await collector.close();
    },
  };
}
