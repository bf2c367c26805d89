import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTypes } from '../../core/formats/avro-types.ts';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createEncoder } from '../../core/serde.ts';
import { startTracing, type Tracing } from '../../core/tracing.ts';
import { startKafkaToAmqp } from '../../integrations/rabbitmq/kafka-to-amqp.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { randomOrder } from '../support/orders.ts';
import { createTopics, seam, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { AMQP_URL, cleanupAmqp, queueBridge, rabbitAnswers, readQueue, topicSpec } from '../support/rabbitmq.ts';
import { headerText } from '../support/workers.ts';

/**
 * The RabbitMQ bridges continue the trace of what they forward, against the
 * RabbitMQ on this machine and the test broker: each message is forwarded in a
 * `forward` span under the trace its headers carry, and what is published or
 * produced carries that span. Skipped without a reachable RabbitMQ.
 */

const rabbitUp = await rabbitAnswers();

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const UPSTREAM_SPAN = 'b7ad6b7169203331';
const UPSTREAM = `00-${TRACE_ID}-${UPSTREAM_SPAN}-01`;

const traceparentOf = (span: ReadableSpan) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;

describe.skipIf(!rabbitUp)(`RabbitMQ bridge tracing (RabbitMQ at ${AMQP_URL})`, () => {
  let config: SluiceConfig;
  let log: Logger;
  let server: RunningRegistry;
  let registry: RegistryClient;
  let exporter: InMemorySpanExporter;
  let tracing: Tracing | undefined;
  const exchanges: string[] = [];
  const queues: string[] = [];

  beforeAll(async () => {
    config = testConfig({ amqpUrl: AMQP_URL, logLevel: 'silent' });
    log = testLogger(config, 'bridge-tracing-test');
    exporter = new InMemorySpanExporter();
    tracing = await startTracing({ config, logger: log, exporter });
    server = await startRegistry({ config, logger: log, port: 0, topic: config.registryTopic });
    registry = new RegistryClient(server.url);
  });

  afterAll(async () => {
    await server?.close();
    await tracing?.close();
    if (await rabbitAnswers()) await cleanupAmqp(exchanges, queues);
  });

  it('Kafka → RabbitMQ: the published message carries the forward span, continued from the record', async () => {
    const topic = topicSpec(uniqueName('trace.scored'), 'OrderScored.avsc');
    const exchange = uniqueName('trace-notification');
    const queue = uniqueName('trace-notification-consumer');
    exchanges.push(exchange);
    queues.push(queue);
    await createTopics([{ topic: topic.name, numPartitions: 1 }]);
    const schemaId = await registry.register(topic.valueSchema!.subject, topic.valueSchema!.text);
    const encoder = createEncoder(topic.valueSchema!.subject, schemaId, createTypes(topic.valueSchema!.schema));
    const reader = await readQueue(queue, { exchange, type: 'fanout' });
    const bridge = await startKafkaToAmqp({
      config,
      logger: log,
      registry,
      spec: { name: 'trace-scored', direction: 'kafka-to-amqp', topic: topic.name, exchange, exchangeType: 'fanout', routingKey: '', format: 'json', groupId: uniqueName('bridge-group') },
    });
    const producer = seam().producer();
    try {
      const scored = { orderId: 'o-1', customerId: 'c-1', score: 12.5, verdict: 'ACCEPT', reasons: ['ok'], amount: 10, currency: 'EUR', scoredAt: 1_767_225_600_000 };
      await producer.send([
        {
          topic: topic.name,
          key: Buffer.from('o-1'),
          value: encoder.encode(scored),
          headers: [
            ['traceparent', Buffer.from(UPSTREAM)],
            ['tracestate', Buffer.from('vendor=x1')],
          ],
        },
      ]);
      await reader.waitFor((m) => m.length >= 1, 30_000, 'the forwarded message');
      await expect.poll(() => exporter.getFinishedSpans().filter((s) => s.name === `forward ${topic.name}`).length, { timeout: 5000 }).toBe(1);

      const forward = exporter.getFinishedSpans().find((s) => s.name === `forward ${topic.name}`)!;
      expect(forward.kind).toBe(SpanKind.CONSUMER);
      expect(forward.spanContext().traceId).toBe(TRACE_ID);
      expect(forward.parentSpanContext?.spanId).toBe(UPSTREAM_SPAN);
      expect(forward.status.code).toBe(SpanStatusCode.UNSET);
      expect(forward.attributes).toMatchObject({ 'sluice.bridge': 'trace-scored', 'messaging.destination.name': topic.name, 'messaging.rabbitmq.exchange': exchange });
      const headers = reader.received[0]!.properties.headers!;
      expect(headers.traceparent).toBe(traceparentOf(forward));
      expect(headers.tracestate).toBe('vendor=x1');
    } finally {
      await producer.close();
      await bridge.stop();
      await reader.close();
    }
  });

  it('RabbitMQ → Kafka: the produced record and the dead letter carry their forward spans, continued from the AMQP headers', async () => {
    const running = await queueBridge({ config, logger: log, registry, name: 'trace-orders-in', topicPrefix: 'trace.placed', partitions: 1, prefetch: 10, queues });
    const { topic, dlq, queue, collector, connection } = running;
    try {
      const channel = await connection.createConfirmChannel();
      channel.sendToQueue(queue, Buffer.from(JSON.stringify(randomOrder())), { messageId: 'good', headers: { traceparent: UPSTREAM } });
      channel.sendToQueue(queue, Buffer.from('not json'), { messageId: 'bad', headers: { traceparent: Buffer.from(UPSTREAM) } });
      await channel.waitForConfirms();
      const records = await collector.waitFor((r) => r.length >= 2, 30_000, 'the event and the dead letter');
      await expect.poll(() => exporter.getFinishedSpans().filter((s) => s.name === `forward ${queue}`).length, { timeout: 5000 }).toBe(2);

      const spans = exporter.getFinishedSpans().filter((s) => s.name === `forward ${queue}`);
      for (const span of spans) {
        expect(span.kind).toBe(SpanKind.CONSUMER);
        expect(span.spanContext().traceId).toBe(TRACE_ID);
        expect(span.parentSpanContext?.spanId).toBe(UPSTREAM_SPAN);
        expect(span.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'sluice.bridge': 'trace-orders-in' });
      }
      const ok = spans.find((s) => s.status.code === SpanStatusCode.UNSET)!;
      const failed = spans.find((s) => s.status.code === SpanStatusCode.ERROR)!;
      expect(failed.status.message).toContain('not JSON');
      const event = records.find((r) => r.topic === topic.name)!;
      const dead = records.find((r) => r.topic === dlq)!;
      expect(headerText(event.headers, 'traceparent')).toBe(traceparentOf(ok));
      expect(headerText(dead.headers, 'traceparent')).toBe(traceparentOf(failed));
      expect(event.headers.filter(([name]) => name === 'traceparent')).toHaveLength(1);
    } finally {
      await running.close();
    }
  });
});
