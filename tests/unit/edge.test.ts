import { describe, expect, it } from 'vitest';
import type { ConsumeMessage } from 'amqplib';
import { TopologyError } from '../../core/errors.ts';
import { prefixEnd } from '../../discovery/etcd.ts';
import { parseInstance, type ServiceInstance } from '../../discovery/registry.ts';
import { backendsFrom } from '../../lb/backends.ts';
import { haproxyConfig } from '../../lb/haproxy-config.ts';
import { nginxConfig } from '../../lb/nginx-config.ts';
import { backoffDelay } from '../../integrations/rabbitmq/link.ts';
import { kafkaHeadersFrom, kafkaKeyFrom, toAmqpMessage } from '../../integrations/rabbitmq/payload.ts';
import { parseBridges } from '../../topology/bridges.ts';
import type { TopicSpec } from '../../topology/model.ts';

const instance = (id: string, port: number, kind: ServiceInstance['kind'] = 'ingress'): ServiceInstance => ({
  id,
  kind,
  name: kind,
  address: '127.0.0.1',
  port,
  healthUrl: `http://127.0.0.1:${port}/readyz`,
  version: '0.1.0',
  pid: 1,
  startedAt: '2026-01-01T00:00:00Z',
});

describe('load balancer configuration', () => {
  const backends = backendsFrom([instance('ingress-h-1-1', 8081), instance('ingress-h-1-0', 8080), instance('registry-h-2', 8090, 'registry'), instance('dup', 8080)]);

  it('fronts only ingress instances, once per address, in port order', () => {
    expect(backends.map((b) => b.port)).toEqual([8080, 8081]);
  });

  it('HAProxy: /readyz checks, retries only requests that could not be sent, redispatch', () => {
    const cfg = haproxyConfig({ bindHost: '127.0.0.1', bindPort: 8000, backends, checkIntervalMs: 500 });
    expect(cfg).toContain('bind 127.0.0.1:8000');
    expect(cfg).toContain('option httpchk GET /readyz');
    expect(cfg).toContain('retry-on conn-failure');
    expect(cfg).toContain('option redispatch 1');
    // A reload keeps idle client connections until their next request (lb.test.ts: none fails at the reload).
    expect(cfg).toContain('option idle-close-on-response');
    expect(cfg).toContain('server ingress-h-1-0 127.0.0.1:8080 check');
    expect(cfg).toContain('inter 500ms');
    expect(cfg).not.toMatch(/retry-on .*(empty-response|503|response-timeout)/);
  });

  it('HAProxy with no instance yet is still a valid file (answers 503)', () => {
    expect(haproxyConfig({ bindHost: '0.0.0.0', bindPort: 80, backends: [] })).toContain('No ingress instance');
  });

  it('NGINX: upstream of the same servers, never replays a sent POST; a placeholder when empty', () => {
    const cfg = nginxConfig({ bindHost: '127.0.0.1', bindPort: 8000, backends });
    expect(cfg).toContain('server 127.0.0.1:8080 max_fails=1 fail_timeout=5s;');
    expect(cfg).toContain('proxy_next_upstream error timeout;');
    expect(cfg).not.toContain('non_idempotent');
    expect(nginxConfig({ bindHost: '127.0.0.1', bindPort: 8000, backends: [] })).toContain('server 127.0.0.1:9 down;');
  });
});

describe('discovery', () => {
  it('scans a prefix with the next key as range end', () => {
    expect(prefixEnd('/sluice/services/')).toBe('/sluice/services0');
  });
  it('trusts only entries shaped like an instance', () => {
    expect(parseInstance(instance('a', 1))).toBeDefined();
    expect(parseInstance({ ...instance('a', 1), kind: 'database' })).toBeUndefined();
    expect(parseInstance('text')).toBeUndefined();
  });
});

describe('RabbitMQ payloads', () => {
  const record = {
    topic: 'orders.scored',
    partition: 2,
    offset: '41',
    timestamp: '1767225600000',
    key: Buffer.from('o-1'),
    value: Buffer.from([0, 0, 0, 0, 1, 2]),
    headers: [['correlation-id', Buffer.from('c-1')]] as const,
  };

  it('Kafka → AMQP: JSON of the decoded event with exact longs; key, headers, position as properties', () => {
    const out = toAmqpMessage(record, 'json', { schemaId: 1, value: { orderId: 'o-1', big: 9007199254740993n } });
    expect(out.content.toString()).toBe('{"orderId":"o-1","big":9007199254740993}');
    expect(out.options).toMatchObject({
      persistent: true,
      contentType: 'application/json',
      messageId: 'orders.scored/2/41',
      correlationId: 'c-1',
      timestamp: 1767225600,
      headers: { 'kafka-key': 'o-1', 'kafka-topic': 'orders.scored', 'kafka-partition': 2, 'kafka-offset': '41', 'schema-id': 1, 'correlation-id': 'c-1' },
    });
  });

  it('Kafka → AMQP: avro passes the framed bytes through; a binary key travels as base64', () => {
    const out = toAmqpMessage({ ...record, key: Buffer.from([0xff, 0x00]) }, 'avro');
    expect(out.content).toEqual(record.value);
    expect(out.options.headers).toMatchObject({ 'kafka-key': '/wA=', 'kafka-key-encoding': 'base64' });
  });

  it('AMQP → Kafka: key from the event field, else the kafka-key header; headers as text', () => {
    const message = {
      content: Buffer.from('{}'),
      fields: { deliveryTag: 1, redelivered: false, exchange: 'ex', routingKey: 'rk', consumerTag: 't' },
      properties: { headers: { 'kafka-key': 'from-header', n: 3 }, correlationId: 'c-9', messageId: 'm-1' },
    } as unknown as ConsumeMessage;
    expect(kafkaKeyFrom(message, { orderId: 'o-7' }, 'orderId')?.toString()).toBe('o-7');
    expect(kafkaKeyFrom(message, {}, undefined)?.toString()).toBe('from-header');
    expect(kafkaHeadersFrom(message, 'q')).toEqual({ n: '3', 'correlation-id': 'c-9', 'amqp-message-id': 'm-1', 'amqp-queue': 'q', 'amqp-exchange': 'ex', 'amqp-routing-key': 'rk' });
  });

  it('reconnect backoff grows, is capped and jittered', () => {
    const b = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, b, () => 0)).toBe(50);
    expect(backoffDelay(3, b, () => 1)).toBe(800);
    expect(backoffDelay(30, b, () => 1)).toBe(1000);
  });
});

describe('topology bridges', () => {
  const topics: TopicSpec[] = [
    {
      name: 'orders.scored',
      partitions: 1,
      replicationFactor: 1,
      configs: {},
      valueSchema: { file: 'f', subject: 'orders.scored-value', text: '', schema: { type: 'record', name: 'S', fields: [{ name: 'orderId', type: 'string' }] } },
    },
    { name: 'orders.dlq', partitions: 1, replicationFactor: 1, configs: {} },
  ];
  const fail = (path: (string | number)[], message: string) => new TopologyError({ file: 't.yaml' }, path.join('.'), message);

  it('reads both directions with defaults', () => {
    const bridges = parseBridges(
      [
        { name: 'notify', from: { topic: 'orders.scored' }, to: { exchange: 'notification' } },
        { name: 'inbound', from: { queue: 'orders-in' }, to: { topic: 'orders.scored', key: 'orderId' }, deadLetter: 'orders.dlq' },
      ],
      topics,
      fail,
    );
    expect(bridges[0]).toEqual({
      name: 'notify',
      direction: 'kafka-to-amqp',
      topic: 'orders.scored',
      exchange: 'notification',
      exchangeType: 'fanout',
      routingKey: '',
      format: 'json',
      groupId: 'sluice.bridge.notify',
    });
    expect(bridges[1]).toMatchObject({ direction: 'amqp-to-kafka', queue: 'orders-in', key: 'orderId', deadLetter: 'orders.dlq', prefetch: 100 });
  });

  it('names the offending entry', () => {
    expect(() => parseBridges([{ name: 'x', from: { queue: 'q' }, to: { topic: 'orders.scored' } }], topics, fail)).toThrow(/bridges\.0\.deadLetter: queue → topic bridges need a deadLetter/);
    expect(() => parseBridges([{ name: 'x', from: { topic: 'nope' }, to: { exchange: 'e' } }], topics, fail)).toThrow(/bridges\.0\.from\.topic: topic "nope" is not declared/);
    expect(() => parseBridges([{ name: 'x', from: { queue: 'q' }, to: { topic: 'orders.scored', key: 'sku' }, deadLetter: 'orders.dlq' }], topics, fail)).toThrow(/key field "sku"/);
  });
});
