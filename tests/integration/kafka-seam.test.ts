import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, type KafkaAdmin, type KafkaProducer } from '../../kafka/index.ts';
import { partitionForKey } from '../../kafka/partitioner.ts';
import { resolvePositions } from '../../reads/positions.ts';
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

  it('reads back every record with its key, headers (repeated names kept) and offset', async () => {
    const reader = kafka.partitionReader();
    try {
      const records = await reader.readToEnd([topic]);
      expect(records).toHaveLength(30);
      const first = records.find((r) => r.value?.toString() === 'v0')!;
      expect(first.key?.toString()).toBe('k0');
      expect(first.headers.map(([n, v]) => `${n}=${v?.toString()}`)).toEqual(['h=1', 'h=2']);
      expect(first.timestamp).toBeGreaterThan(0n);
    } finally {
      await reader.close();
    }
  });

  it('reads committed records only and skips aborted transactions, batch by batch with backpressure', async () => {
    const txTopic = uniqueName('seam-tx');
    await admin.createTopics([{ name: txTopic, partitions: 1 }]);
    const raw = new Producer({ clientId: 'seam-test-tx', bootstrapBrokers: brokers(), idempotent: true, transactionalId: uniqueName('tx') });
    try {
      for (const [i, outcome] of ['commit', 'abort', 'commit'].entries()) {
        const tx = await raw.beginTransaction();
        await tx.send({ messages: [0, 1, 2].map((j) => ({ topic: txTopic, partition: 0, value: Buffer.from(`${outcome}-${i}-${j}`) })) });
        await (outcome === 'commit' ? tx.commit() : tx.abort());
      }
      const reader = kafka.partitionReader({ maxWaitMs: 100 });
      const seen: string[] = [];
      let handling = 0;
      let overlapped = false;
      reader.assign([{ topic: txTopic, partition: 0, offset: 0n }]);
      const running = reader.run(async (batch) => {
        handling += 1;
        if (handling > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 20));
        seen.push(...batch.records.map((r) => r.value!.toString()));
        handling -= 1;
      });
      const deadline = Date.now() + 10_000;
      while (seen.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await reader.close();
      await running;
      expect(seen).toEqual(['commit-0-0', 'commit-0-1', 'commit-0-2', 'commit-2-0', 'commit-2-1', 'commit-2-2']);
      expect(overlapped).toBe(false);
    } finally {
      await raw.close();
      await admin.deleteTopics([txTopic]).catch(() => undefined);
    }
  });

  it('a reader tells where its partitions end (the last stable offset, held back by an open transaction) and reads one record at an offset', async () => {
    const txTopic = uniqueName('seam-ends');
    await admin.createTopics([{ name: txTopic, partitions: 1 }]);
    const raw = new Producer({ clientId: 'seam-test-ends', bootstrapBrokers: brokers(), idempotent: true, transactionalId: uniqueName('tx') });
    const reader = kafka.partitionReader({ maxWaitMs: 100 });
    try {
      const committed = await raw.beginTransaction();
      await committed.send({ messages: [0, 1, 2].map((j) => ({ topic: txTopic, partition: 0, value: Buffer.from(`c-${j}`) })) });
      await committed.commit();
      // Offsets 0-2 the records, 3 the commit marker; 4 and 5 an open transaction's records.
      const open = await raw.beginTransaction();
      await open.send({ messages: [0, 1].map((j) => ({ topic: txTopic, partition: 0, value: Buffer.from(`o-${j}`) })) });
      reader.assign([{ topic: txTopic, partition: 0, offset: 0n }]);
      expect(await reader.ends()).toEqual([{ topic: txTopic, partition: 0, offset: 4n }]);
      await open.commit();
      await expect.poll(async () => (await reader.ends())[0]!.offset).toBe(7n);
      // A point read: the record at an offset, none past the end.
      expect((await reader.readAt(txTopic, 0, 1n))?.value?.toString()).toBe('c-1');
      expect((await reader.readAt(txTopic, 0, 5n))?.value?.toString()).toBe('o-1');
      expect(await reader.readAt(txTopic, 0, 99n)).toBeUndefined();
    } finally {
      await reader.close();
      await raw.close();
      await admin.deleteTopics([txTopic]).catch(() => undefined);
    }
  });

  it('a reader resolves where to start on its own connection (watermarks, offsets by time) and reads every partition from there', async () => {
    const positioned = uniqueName('seam-positions');
    await admin.createTopics([{ name: positioned, partitions: 3 }]);
    // Partition 0 three records, partition 1 none, partition 2 five: a second apart, from a minute ago.
    const base = BigInt(Date.now()) - 60_000n;
    const written = (partition: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ topic: positioned, partition, value: Buffer.from(`p${partition}-${i}`), timestamp: base + BigInt(i) * 1000n }));
    await producer.send([...written(0, 3), ...written(2, 5)]);
    const connections = new Set<unknown>();
    // The client's diagnostics channel: every connection it opens starts there.
    const connecting = 'tracing:plt:kafka:connections:connects:start';
    const onConnect = (context: unknown) => void connections.add((context as { connection: unknown }).connection);
    subscribe(connecting, onConnect);
    const reader = kafka.partitionReader({ maxWaitMs: 100 });
    try {
      expect(await reader.watermarks([positioned])).toEqual(
        new Map([
          [
            positioned,
            [
              { partition: 0, low: 0n, high: 3n },
              { partition: 1, low: 0n, high: 0n },
              { partition: 2, low: 0n, high: 5n },
            ],
          ],
        ]),
      );
      // At or after 1.5 s past the first: offset 2 of partitions 0 and 2; none in the empty partition.
      const since = base + 1500n;
      expect(await reader.offsetsAt([positioned], since)).toEqual(
        new Map([
          [
            positioned,
            new Map([
              [0, 2n],
              [1, -1n],
              [2, 2n],
            ]),
          ],
        ]),
      );
      const ranges = await resolvePositions(reader, [positioned], { start: { kind: 'time', timestamp: Number(since) } });
      expect(ranges).toEqual([
        { topic: positioned, partition: 0, start: '2', end: '3' },
        { topic: positioned, partition: 1, start: '0', end: '0' },
        { topic: positioned, partition: 2, start: '2', end: '5' },
      ]);
      expect(await resolvePositions(reader, [positioned], { start: { kind: 'beginning' }, partition: 2 })).toEqual([{ topic: positioned, partition: 2, start: '0', end: '5' }]);
      reader.assign(ranges.map((r) => ({ topic: r.topic, partition: r.partition, offset: BigInt(r.start) })));
      const read: string[] = [];
      await reader.run(
        (batch) => {
          for (const r of batch.records) read.push(`${batch.partition}:${r.offset}:${r.value?.toString()}`);
        },
        (positions) => positions.every((p) => p.offset >= BigInt(ranges.find((r) => r.partition === p.partition)!.end)),
      );
      expect(read.sort()).toEqual(['0:2:p0-2', '2:2:p2-2', '2:3:p2-3', '2:4:p2-4']);
      // Positions, metadata and fetches all went over one connection.
      expect(connections.size).toBe(1);
      await expect(reader.watermarks([positioned, uniqueName('missing')])).rejects.toMatchObject({ code: 'SLUICE_KAFKA_UNKNOWN_TOPIC' });
      // An internal topic, as the admin's topic list: not there to read.
      await expect(reader.watermarks(['__consumer_offsets'])).rejects.toMatchObject({ code: 'SLUICE_KAFKA_UNKNOWN_TOPIC' });
    } finally {
      unsubscribe(connecting, onConnect);
      await reader.close();
      await admin.deleteTopics([positioned]).catch(() => undefined);
    }
  });

  it('fails fast with a coded error for a topic that does not exist', async () => {
    await expect(admin.describeTopics([uniqueName('missing')])).rejects.toMatchObject({ code: 'SLUICE_KAFKA_UNKNOWN_TOPIC' });
  });
});
