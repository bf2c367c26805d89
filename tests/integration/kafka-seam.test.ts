import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, type KafkaAdmin, type KafkaProducer } from '../../kafka/index.ts';
import { partitionForKey } from '../../kafka/partitioner.ts';
import { hasKcat, kcatReadAll } from '../support/kcat.ts';
import { brokers, testConfig, testLogger, uniqueName } from '../support/platform.ts';

/** The seam's producer and admin against the real broker. */
describe('Kafka seam: producer and admin', () => {
  const config = testConfig();
  const kafka = createKafka(config, testLogger(config), 'seam-test');
  let admin: KafkaAdmin;
  let producer: KafkaProducer;
  const topic = uniqueName('seam');
  const wide = uniqueName('seam-wide');

  beforeAll(async () => {
    admin = kafka.admin();
    producer = kafka.producer();
  });

  afterAll(async () => {
    await admin.deleteTopics([topic, wide]).catch(() => undefined);
    await Promise.all([producer.close(), admin.close()]);
  });

  it('creates a 48-partition topic and returns only when every partition has a leader', async () => {
    expect(await admin.createTopics([{ name: wide, partitions: 48, configs: { 'retention.ms': '3600000' } }])).toEqual([wide]);
    const [described] = await admin.describeTopics([wide]);
    expect(described!.partitions).toHaveLength(48);
    expect(described!.partitions.every((p) => p.leader >= 0)).toBe(true);
    // Produce at once to every partition: no UNKNOWN_TOPIC_OR_PARTITION right after creation.
    const sent = await producer.send(Array.from({ length: 48 }, (_, partition) => ({ topic: wide, partition, value: Buffer.from(`p${partition}`) })));
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 48 }, () => 0n));
    expect(await admin.createTopics([{ name: wide, partitions: 48 }])).toEqual([]);
  });

  it('gives every record its own partition and offset, keyed records where the Java client puts them', async () => {
    await admin.createTopics([{ name: topic, partitions: 3 }]);
    const records = Array.from({ length: 30 }, (_, i) => ({
      topic,
      key: Buffer.from(`k${i % 7}`),
      value: Buffer.from(`v${i}`),
      headers: [
        ['h', Buffer.from('1')],
        ['h', Buffer.from('2')],
      ] as const,
    }));
    const [first, second] = await Promise.all([producer.send(records.slice(0, 15)), producer.send(records.slice(15))]);
    const metadata = [...first!, ...second!];
    metadata.forEach((m, i) => expect(m.partition).toBe(partitionForKey(`k${i % 7}`, 3)));
    const byPartition = new Map<number, bigint[]>();
    for (const m of metadata) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m.offset]);
    for (const offsets of byPartition.values()) expect(offsets).toEqual(offsets.map((_, i) => BigInt(i)));
    const marks = await admin.watermarks(topic);
    expect(marks.reduce((sum, m) => sum + m.high, 0n)).toBe(30n);
    if (hasKcat) {
      const read = kcatReadAll(brokers(), topic);
      for (const [i, m] of metadata.entries()) expect(read.find((r) => r.partition === m.partition && BigInt(r.offset) === m.offset)?.value?.toString()).toBe(`v${i}`);
    }
  });

  it('reads and alters topic configs, offsets by time, and group offsets', async () => {
    await admin.alterTopicConfigs(topic, { 'retention.ms': '7200000' });
    const configs = (await admin.describeTopicConfigs([topic])).get(topic)!;
    expect(configs.find((c) => c.name === 'retention.ms')).toMatchObject({ value: '7200000', isTopicLevel: true });
    const future = await admin.listOffsets(topic, { timestamp: BigInt(Date.now() + 3_600_000) });
    const latest = await admin.listOffsets(topic, 'latest');
    expect(future).toEqual(latest);
    const group = uniqueName('seam-group');
    await admin.setGroupOffsets(group, [{ topic, partition: 0, offset: 1n }]);
    expect(await admin.committedOffsets(group, [topic])).toEqual([{ topic, partition: 0, offset: 1n }]);
    expect((await admin.listGroups()).map((g) => g.groupId)).toContain(group);
    await admin.deleteGroups([group]);
    await admin.createPartitions(topic, 4);
    expect(await admin.partitionCount(topic)).toBe(4);
    const cluster = await admin.describeCluster();
    expect(cluster.brokers.length).toBeGreaterThan(0);
  });

  it('fails fast with a coded error for a topic that does not exist', async () => {
    await expect(admin.describeTopics([uniqueName('missing')])).rejects.toMatchObject({ code: 'SLUICE_KAFKA_UNKNOWN_TOPIC' });
  });
});
