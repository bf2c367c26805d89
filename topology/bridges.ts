import type { TopologyError } from '../core/errors.ts';
import type { PathPart } from '../core/schema-checker.ts';
import { topLevelFields, type BridgeSpec, type ExchangeType, type TopicSpec } from './model.ts';

/** Reading `bridges:` of the topology file (the bridge specs are in model.ts). */

type Fail = (path: PathPart[], message: string) => TopologyError;

const BRIDGE_NAME = /^[a-z0-9][a-z0-9-]*$/;
const AMQP_NAME = /^[A-Za-z0-9._:-]{1,255}$/;
const EXCHANGE_TYPES: readonly ExchangeType[] = ['fanout', 'direct', 'topic', 'headers'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapping(value: unknown, path: PathPart[], allowed: string[], fail: Fail): Record<string, unknown> {
  if (!isRecord(value)) throw fail(path, 'expected a mapping');
  for (const key of Object.keys(value)) if (!allowed.includes(key)) throw fail([...path, key], `unknown key "${key}" (expected one of: ${allowed.join(', ')})`);
  return value;
}

function str(value: unknown, path: PathPart[], fail: Fail, pattern?: RegExp, what = 'value'): string {
  if (typeof value !== 'string' || value === '') throw fail(path, 'expected a non-empty string');
  if (pattern && !pattern.test(value)) throw fail(path, `"${value}" is not a valid ${what}`);
  return value;
}

function fieldsOf(topic: TopicSpec): string[] | undefined {
  return topic.valueSchema ? topLevelFields(topic.valueSchema) : undefined;
}

/** Reads and cross-checks `bridges:` against the declared topics; errors point at the offending entry. */
export function parseBridges(raw: unknown, topics: TopicSpec[], fail: Fail): BridgeSpec[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw fail(['bridges'], 'expected a list');
  const requireTopic = (name: string, path: PathPart[], needsSchema: boolean): TopicSpec => {
    const topic = topics.find((t) => t.name === name);
    if (!topic) throw fail(path, `topic "${name}" is not declared under topics`);
    if (needsSchema && !topic.valueSchema) throw fail(path, `topic "${name}" has no valueSchema; bridges decode and validate by schema`);
    return topic;
  };
  const names = new Set<string>();
  return raw.map((entry, i): BridgeSpec => {
    const path: PathPart[] = ['bridges', i];
    const b = mapping(entry, path, ['name', 'from', 'to', 'format', 'groupId', 'deadLetter', 'prefetch'], fail);
    const name = str(b.name, [...path, 'name'], fail, BRIDGE_NAME, 'bridge name (lower-case letters, digits and "-")');
    if (names.has(name)) throw fail([...path, 'name'], `bridge "${name}" is declared twice`);
    names.add(name);
    const format = b.format ?? 'json';
    if (format !== 'json' && format !== 'avro') throw fail([...path, 'format'], `expected json or avro, got ${JSON.stringify(format)}`);
    const from = mapping(b.from, [...path, 'from'], ['topic', 'queue'], fail);
    if ((from.topic === undefined) === (from.queue === undefined)) throw fail([...path, 'from'], 'expected exactly one of topic (Kafka → RabbitMQ) or queue (RabbitMQ → Kafka)');
    if (from.topic !== undefined) {
      const topic = requireTopic(str(from.topic, [...path, 'from', 'topic'], fail), [...path, 'from', 'topic'], format === 'json');
      const to = mapping(b.to, [...path, 'to'], ['exchange', 'exchangeType', 'routingKey'], fail);
      const exchangeType = to.exchangeType ?? 'fanout';
      if (!EXCHANGE_TYPES.includes(exchangeType as ExchangeType)) throw fail([...path, 'to', 'exchangeType'], `expected one of ${EXCHANGE_TYPES.join(', ')}`);
      if (b.prefetch !== undefined) throw fail([...path, 'prefetch'], 'prefetch applies to queue → topic bridges only');
      const deadLetter = b.deadLetter === undefined ? undefined : requireTopic(str(b.deadLetter, [...path, 'deadLetter'], fail), [...path, 'deadLetter'], false).name;
      return {
        name,
        direction: 'kafka-to-amqp',
        topic: topic.name,
        exchange: str(to.exchange, [...path, 'to', 'exchange'], fail, AMQP_NAME, 'exchange name'),
        exchangeType: exchangeType as ExchangeType,
        routingKey: to.routingKey === undefined ? '' : String(to.routingKey),
        format,
        groupId: b.groupId === undefined ? `sluice.bridge.${name}` : str(b.groupId, [...path, 'groupId'], fail),
        ...(deadLetter === undefined ? {} : { deadLetter }),
      };
    }
    const queue = str(from.queue, [...path, 'from', 'queue'], fail, AMQP_NAME, 'queue name');
    const to = mapping(b.to, [...path, 'to'], ['topic', 'key'], fail);
    const topic = requireTopic(str(to.topic, [...path, 'to', 'topic'], fail), [...path, 'to', 'topic'], true);
    let key: string | undefined;
    if (to.key !== undefined) {
      key = str(to.key, [...path, 'to', 'key'], fail);
      const fields = fieldsOf(topic);
      if (fields && !fields.includes(key)) throw fail([...path, 'to', 'key'], `key field "${key}" is not a field of ${topic.name} (fields: ${fields.join(', ')})`);
    }
    if (b.deadLetter === undefined) throw fail([...path, 'deadLetter'], 'queue → topic bridges need a deadLetter topic for messages that fail validation');
    const deadLetter = requireTopic(str(b.deadLetter, [...path, 'deadLetter'], fail), [...path, 'deadLetter'], false).name;
    if (b.groupId !== undefined) throw fail([...path, 'groupId'], 'groupId applies to topic → exchange bridges only');
    const prefetch = b.prefetch ?? 100;
    if (typeof prefetch !== 'number' || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > 10_000) throw fail([...path, 'prefetch'], 'expected a whole number from 1 to 10000');
    return { name, direction: 'amqp-to-kafka', queue, topic: topic.name, ...(key === undefined ? {} : { key }), format, deadLetter, prefetch };
  });
}
