import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTypes } from '../../core/formats/avro-types.ts';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createEncoder, type EventEncoder } from '../../core/serde.ts';
import { startKafkaToAmqp } from '../../integrations/rabbitmq/kafka-to-amqp.ts';
import { startRegistry } from '../../registry/server.ts';
import { randomOrder } from '../support/orders.ts';
import { createTopics, seam, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { AMQP_URL, cleanupAmqp, hasRabbitmqctl, queueBridge, rabbitAnswers, rabbitmqctl, readQueue, topicSpec, waitForRabbit } from '../support/rabbitmq.ts';

/**
 * The RabbitMQ bridges against the RabbitMQ on this machine and the test broker.
 * Skipped without a reachable RabbitMQ (apt-get install rabbitmq-server; rabbitmq-server -detached).
 */

const rabbitUp = await rabbitAnswers();

function scored(orderId: string) {
  return { orderId, customerId: 'c-1', score: 12.5, verdict: 'ACCEPT', reasons: ['ok'], amount: 10, currency: 'EUR', scoredAt: 1_767_225_600_000 };
}

describe.skipIf(!rabbitUp)(`RabbitMQ bridges (RabbitMQ at ${AMQP_URL})`, () => {
  let config: SluiceConfig;
  let log: Logger;
  let registry: RegistryClient;
  let closeRegistry: () => Promise<void>;
  const exchanges: string[] = [];
  const queues: string[] = [];

  beforeAll(async () => {
    config = testConfig({ amqpUrl: AMQP_URL });
    log = testLogger(config, 'bridge-test');
    const server = await startRegistry({ config, logger: log, port: 0, topic: config.registryTopic });
    registry = new RegistryClient(server.url);
    closeRegistry = () => server.close();
  });

  afterAll(async () => {
    await closeRegistry?.();
    if (await rabbitAnswers()) await cleanupAmqp(exchanges, queues);
  });

  it.skipIf(!hasRabbitmqctl)(
    'Kafka → fanout exchange: every event reaches a bound queue, through a RabbitMQ restart mid-stream',
    async () => {
      const topic = topicSpec(uniqueName('bridge.scored'), 'OrderScored.avsc');
      const exchange = uniqueName('notification');
      const queue = uniqueName('notification-consumer');
      exchanges.push(exchange);
      queues.push(queue);
      await createTopics([{ topic: topic.name, numPartitions: 3 }]);
      const schemaId = await registry.register(topic.valueSchema!.subject, topic.valueSchema!.text);
      const encoder: EventEncoder = createEncoder(topic.valueSchema!.subject, schemaId, createTypes(topic.valueSchema!.schema));
      const reader = await readQueue(queue, { exchange, type: 'fanout' });
      const bridge = await startKafkaToAmqp({
        config,
        logger: log,
        registry,
        spec: { name: 'scored', direction: 'kafka-to-amqp', topic: topic.name, exchange, exchangeType: 'fanout', routingKey: '', format: 'json', groupId: uniqueName('bridge-group') },
      });
      const producer = seam().producer();
      const ids: string[] = [];
      const send = async (n: number) => {
        const batch = Array.from({ length: n }, () => `order-${ids.length}-${Math.random().toString(36).slice(2, 8)}`);
        ids.push(...batch);
        await producer.send(batch.map((id) => ({ topic: topic.name, key: Buffer.from(id), value: encoder.encode(scored(id)), headers: [['correlation-id', Buffer.from(`corr-${id}`)]] as const })));
      };
      try {
        await send(150);
        await reader.waitFor((m) => m.length >= 150, 30_000, 'the first 150 messages');

        const restart = (async () => {
          rabbitmqctl('stop_app');
          rabbitmqctl('start_app');
        })();
        // Events produced while RabbitMQ is going down, down and coming back.
        for (let i = 0; i < 5; i++) {
          await send(30);
          await new Promise((r) => setTimeout(r, 300));
        }
        await restart;
        await waitForRabbit();
        await send(100);

        const distinct = () => new Set(reader.received.map((m) => JSON.parse(m.content.toString()).orderId as string));
        await reader.waitFor(() => distinct().size >= ids.length, 90_000, `all ${ids.length} events`);
        expect([...distinct()].sort()).toEqual([...ids].sort());

        const first = reader.received.find((m) => JSON.parse(m.content.toString()).orderId === ids[0])!;
        expect(first.properties.contentType).toBe('application/json');
        expect(first.properties.correlationId).toBe(`corr-${ids[0]}`);
        expect(first.properties.messageId).toMatch(new RegExp(`^${topic.name.replace(/\./g, '\\.')}/\\d/\\d+$`));
        expect(first.properties.headers?.['kafka-key']).toBe(ids[0]);
        expect(first.properties.headers?.['schema-id']).toBe(schemaId);
        expect(JSON.parse(first.content.toString())).toEqual(scored(ids[0]!));
        const duplicates = reader.received.length - distinct().size;
        const stats = bridge.stats();
        // At least once: a batch republished after the restart may repeat; report how many did.
        log.warn({ received: reader.received.length, distinct: distinct().size, duplicates, stats }, 'bridge restart figures');
        expect(stats.reconnects).toBeGreaterThanOrEqual(1);
      } finally {
        await producer.close();
        await bridge.stop();
        await reader.close();
      }
    },
    180_000,
  );

  it('RabbitMQ queue → Kafka: valid events are produced keyed by orderId, invalid ones dead-lettered with the reason, all acked', async () => {
    const running = await queueBridge({ config, logger: log, registry, name: 'orders-in', topicPrefix: 'bridge.placed', partitions: 3, prefetch: 50, queues });
    const { topic, dlq, queue, bridge, collector, connection } = running;
    try {
      const channel = await connection.createConfirmChannel();
      const orders = Array.from({ length: 200 }, () => randomOrder());
      for (const [i, o] of orders.entries()) {
        channel.sendToQueue(queue, Buffer.from(JSON.stringify(o)), { persistent: true, correlationId: `c-${i}`, headers: { source: 'test' } });
      }
      channel.sendToQueue(queue, Buffer.from('{"orderId": 7}'), { messageId: 'bad-1' });
      channel.sendToQueue(queue, Buffer.from('not json'), { messageId: 'bad-2' });
      const deep = `${'['.repeat(200)}${']'.repeat(200)}`;
      channel.sendToQueue(queue, Buffer.from(deep), { messageId: 'bad-3' });
      await channel.waitForConfirms();

      await collector.waitFor((r) => r.filter((x) => x.topic === topic.name).length >= 200 && r.filter((x) => x.topic === dlq).length >= 3, 30_000, 'events and dead letters');
      const events = collector.records.filter((r) => r.topic === topic.name);
      const header = (r: (typeof events)[number], name: string) => r.headers.find(([n]) => n === name)?.[1]?.toString();
      expect(new Set(events.map((e) => e.key?.toString()))).toEqual(new Set(orders.map((o) => o.orderId)));
      const first = events.find((e) => e.key?.toString() === orders[0]!.orderId)!;
      expect(header(first, 'correlation-id')).toBe('c-0');
      expect(header(first, 'source')).toBe('test');
      expect(first.value?.[0]).toBe(0); // Confluent framing

      const dead = collector.records.filter((r) => r.topic === dlq);
      const reasons = dead.map((d) => header(d, 'sluice.error.message'));
      expect(reasons.some((r) => r?.includes('orderId'))).toBe(true);
      expect(reasons.some((r) => r?.includes('not JSON'))).toBe(true);
      expect(reasons.some((r) => r?.includes('message is nested more than 128 arrays/objects deep (byte offset 128)'))).toBe(true);
      expect(dead.map((d) => d.value?.toString()).sort()).toEqual([deep, 'not json', '{"orderId": 7}']);

      // Everything was acked: nothing is left in the queue.
      await expect.poll(async () => (await channel.checkQueue(queue)).messageCount, { timeout: 5000 }).toBe(0);
      expect(bridge.stats()).toMatchObject({ forwarded: 200, deadLettered: 3 });
    } finally {
      await running.close();
    }
  });
  it('RabbitMQ queue → Kafka: a message carrying headers reserved for Sluice (sluice.*) is refused to the dead-letter topic, the forged headers renamed, never copied', async () => {
    const running = await queueBridge({ config, logger: log, registry, name: 'forged-in', topicPrefix: 'bridge.forged', partitions: 3, prefetch: 50, queues });
    const { topic, dlq, queue, bridge, collector, connection } = running;
    try {
      const channel = await connection.createConfirmChannel();
      const honest = randomOrder();
      channel.sendToQueue(queue, Buffer.from(JSON.stringify(randomOrder())), {
        messageId: 'forged',
        headers: { 'sluice.principal': 'admin', 'sluice.original.topic': '__consumer_offsets', source: 'x' },
      });
      channel.sendToQueue(queue, Buffer.from(JSON.stringify(honest)), { messageId: 'honest', headers: { source: 'y' } });
      await channel.waitForConfirms();
      await collector.waitFor((r) => r.some((x) => x.topic === topic.name) && r.some((x) => x.topic === dlq), 30_000, 'the honest event and the refused one');
      const header = (r: (typeof collector.records)[number], name: string) => r.headers.find(([n]) => n === name)?.[1]?.toString();
      const events = collector.records.filter((r) => r.topic === topic.name);
      expect(events.map((e) => e.key?.toString())).toEqual([honest.orderId]);
      expect(events[0]!.headers.filter(([name]) => name.startsWith('sluice.'))).toEqual([]);
      const [dead] = collector.records.filter((r) => r.topic === dlq);
      expect(header(dead!, 'sluice.error.code')).toBe('SLUICE_RESERVED_HEADER');
      expect(header(dead!, 'sluice.error.message')).toMatch(/"sluice\.principal", "sluice\.original\.topic" are reserved for Sluice/);
      // Kept, renamed: nothing dropped, nothing trusted (a replay reads sluice.original.topic, which this letter does not have).
      expect(header(dead!, 'refused-header.sluice.principal')).toBe('admin');
      expect(header(dead!, 'refused-header.sluice.original.topic')).toBe('__consumer_offsets');
      expect(header(dead!, 'sluice.principal')).toBeUndefined();
      expect(header(dead!, 'sluice.original.topic')).toBeUndefined();
      expect(bridge.stats()).toMatchObject({ forwarded: 1, deadLettered: 1 });
    } finally {
      await running.close();
    }
  });
});
