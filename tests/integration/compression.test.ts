import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { createKafka } from '../../kafka/index.ts';
import { startIngress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';
import { hasKcat } from '../support/kcat.ts';
import { randomOrder } from '../support/orders.ts';
import { brokers, createTestTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * SLUICE_COMPRESSION: every codec writes batches that librdkafka (kcat) reads back
 * byte for byte, headers included, and that really are compressed: the broker's
 * log (DescribeLogDirs, so it holds with KAFKA_BROKERS and no view of the disk)
 * takes less than the same records written uncompressed.
 */

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
const RECORDS = 400;

interface KcatRecord {
  key: string | null;
  payload: string | null;
  headers: string[] | null;
}

/** Every record of `topic` as kcat's JSON envelope (text keys and values only). */
function kcatJson(topic: string): KcatRecord[] {
  const result = spawnSync('kcat', ['-C', '-b', brokers().join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`kcat exited ${result.status}: ${result.stderr.toString()}`);
  return result.stdout
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as KcatRecord);
}

describe.skipIf(!hasKcat)('batch compression (SLUICE_COMPRESSION)', () => {
  const topics = new Map(CODECS.map((codec) => [codec, uniqueName(`compression-${codec}`)]));
  // JSON-like values, as the ingress's callers send: what compression is for.
  const values = Array.from({ length: RECORDS }, (_, i) => JSON.stringify({ ...randomOrder({ orderId: `order-${i}` }), note: 'same text in every record '.repeat(4) }));
  const logBytes = new Map<string, number>();

  beforeAll(async () => {
    await createTestTopics([...topics.values()].map((name) => ({ name, partitions: 1 })));
  });

  afterAll(async () => {
    await withKafkaAdmin((admin) => admin.deleteTopics([...topics.values(), ...ingressTopics])).catch(() => undefined);
  });

  it.each(CODECS)('%s: the seam producer writes records kcat reads back identically, repeated and empty headers kept', async (codec) => {
    const topic = topics.get(codec)!;
    const config = testConfig({ kafkaCompression: codec });
    const producer = createKafka(config, testLogger(config), 'compression-test').producer();
    try {
      // Two sends of 200: each goes out as one batch (one produce request at a time).
      for (let start = 0; start < RECORDS; start += 200) {
        await producer.send(
          values.slice(start, start + 200).map((value, j) => ({
            topic,
            key: Buffer.from(`k${start + j}`),
            value: Buffer.from(value),
            headers: [
              ['h', Buffer.from('1')],
              ['h', Buffer.from('2')],
              ['empty', Buffer.alloc(0)],
            ] as const,
          })),
        );
      }
    } finally {
      await producer.close();
    }
    const read = kcatJson(topic);
    expect(read).toHaveLength(RECORDS);
    read.forEach((r, i) => {
      expect(r.key).toBe(`k${i}`);
      expect(r.payload).toBe(values[i]);
      expect(r.headers).toEqual(['h', '1', 'h', '2', 'empty', '']);
    });
    logBytes.set(codec, await withKafkaAdmin((admin) => admin.logBytes(topic)));
  });

  it('every codec takes less of the broker log than the same records uncompressed', () => {
    const none = logBytes.get('none')!;
    // 400 records of ~350 B: well above 100 KB uncompressed; each codec at least halves it on this text.
    expect(none).toBeGreaterThan(RECORDS * 300);
    for (const codec of CODECS.filter((c) => c !== 'none')) expect(logBytes.get(codec), codec).toBeLessThan(none / 2);
  });

  const ingressTopics: string[] = [];
  it('the ingress started with SLUICE_COMPRESSION=zstd writes compressed batches that kcat reads', async () => {
    const topic = uniqueName('compression-ingress');
    ingressTopics.push(topic);
    await createTestTopics([{ name: topic, partitions: 1 }]);
    const config = testConfig({ kafkaCompression: 'zstd', lingerMs: '5' });
    const log = testLogger(config, 'compression-test');
    const schemaText = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
    const schema = JSON.parse(schemaText) as NonNullable<Topology['topics'][number]['valueSchema']>['schema'];
    const topology: Topology = {
      file: `${PROJECT_ROOT}/tests/integration/compression.topology.yaml`,
      topics: [
        { name: topic, partitions: 1, replicationFactor: 1, configs: {}, valueSchema: { file: `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, subject: subjectFor(topic), schema, text: schemaText } },
      ],
      routes: [{ method: 'POST', path: '/v1/orders', topic, key: 'orderId' }],
      workers: [],
    };
    const registry = await startRegistry({ config, logger: log, port: 0 });
    const ingress = await startIngress({ config, logger: log, topology, registry: new RegistryClient(registry.url), port: 0 });
    try {
      const orders = Array.from({ length: 200 }, (_, i) => randomOrder({ orderId: `zstd-${i}` }));
      const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(orders) });
      expect(response.status).toBe(200);
      const read = kcatJson(topic);
      expect(read.map((r) => r.key)).toEqual(orders.map((o) => o.orderId));
      // The values alone, as kcat counts them (%S), against the whole log: only compression makes the log the smaller.
      const sizes = spawnSync('kcat', ['-C', '-b', brokers().join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%S\n'], { timeout: 30_000 }).stdout.toString('utf8');
      const valueBytes = sizes
        .split('\n')
        .filter((line) => line !== '')
        .reduce((sum, n) => sum + Number(n), 0);
      expect(valueBytes).toBeGreaterThan(orders.length * 40);
      expect(await withKafkaAdmin((admin) => admin.logBytes(topic))).toBeLessThan(valueBytes);
    } finally {
      await ingress.close();
      await registry.close();
    }
  });
});
