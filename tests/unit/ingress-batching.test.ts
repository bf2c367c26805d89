import { describe, expect, it } from 'vitest';
import type { ProducerBatch, RecordMetadata } from 'kafkajs';
import { pino } from 'pino';
import { BrokerUnavailableError, OverloadedError, ShuttingDownError } from '../../core/errors.ts';
import { BatchingProducer, type OutgoingRecord, type SendBatch } from '../../producers/batching-producer.ts';
import { partitionForKey } from '../../producers/partitioner.ts';

const logger = pino({ level: 'silent' });
const PARTITIONS = 4;

/** A fake broker: keeps per-partition logs and answers like Kafka (base offset of each partition's batch). */
function fakeBroker(options: { delayMs?: number; fail?: (call: number) => Error | undefined } = {}) {
  const logs = new Map<string, { key: string | null; value: string }[]>();
  const calls: ProducerBatch[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send: SendBatch = async (batch) => {
    calls.push(batch);
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((r) => setTimeout(r, options.delayMs ?? 1));
      const failure = options.fail?.(calls.length);
      if (failure) throw failure;
      const out: RecordMetadata[] = [];
      for (const { topic, messages } of batch.topicMessages!) {
        const byPartition = new Map<number, typeof messages>();
        for (const m of messages) {
          const list = byPartition.get(m.partition!) ?? [];
          list.push(m);
          byPartition.set(m.partition!, list);
        }
        for (const [partition, list] of byPartition) {
          const log = logs.get(`${topic}/${partition}`) ?? [];
          logs.set(`${topic}/${partition}`, log);
          const baseOffset = log.length;
          for (const m of list) log.push({ key: m.key as string | null, value: (m.value as Buffer).toString() });
          out.push({ topicName: topic, partition, errorCode: 0, baseOffset: String(baseOffset) });
        }
      }
      return out;
    } finally {
      inFlight -= 1;
    }
  };
  return { send, calls, logs, maxInFlight: () => maxInFlight };
}

function batcher(send: SendBatch, over: Partial<ConstructorParameters<typeof BatchingProducer>[0]> = {}) {
  return new BatchingProducer({
    send,
    partitionCount: async () => PARTITIONS,
    lingerMs: 2,
    batchMaxRecords: 100,
    maxQueuedRecords: 1000,
    timeoutMs: 2000,
    logger,
    ...over,
  });
}

const record = (key: string | null, value: string, topic = 'orders'): OutgoingRecord => ({ topic, key, value: Buffer.from(value), headers: {} });

describe('batching producer', () => {
  it('gives every record the offset of its own record on the fake broker', async () => {
    const broker = fakeBroker();
    const producer = batcher(broker.send);
    const requests = Array.from({ length: 40 }, (_, r) => producer.produce(Array.from({ length: 5 }, (_, i) => record(`k${(r * 5 + i) % 13}`, `v${r}-${i}`, r % 2 === 0 ? 'orders' : 'payments'))));
    const acks = await Promise.all(requests);
    acks.forEach((reqAcks, r) =>
      reqAcks.forEach((ack, i) => {
        const key = `k${(r * 5 + i) % 13}`;
        expect(ack.partition).toBe(partitionForKey(key, PARTITIONS));
        const stored = broker.logs.get(`${ack.topic}/${ack.partition}`)![Number(ack.offset)];
        expect(stored).toEqual({ key, value: `v${r}-${i}` });
      }),
    );
    // 200 records from 40 concurrent requests, 100 per send at most.
    expect(broker.calls.length).toBeLessThanOrEqual(3);
    expect(broker.maxInFlight()).toBe(1);
    // kafkajs loses records when one send lists a topic twice, so each topic appears once.
    for (const call of broker.calls) {
      const topics = call.topicMessages!.map((t) => t.topic);
      expect(new Set(topics).size).toBe(topics.length);
    }
  });

  it('never has more than one send in flight and coalesces what arrives meanwhile', async () => {
    const broker = fakeBroker({ delayMs: 20 });
    const producer = batcher(broker.send, { lingerMs: 0 });
    const first = producer.produce([record('a', '1')]);
    await new Promise((r) => setTimeout(r, 5));
    const rest = Array.from({ length: 30 }, (_, i) => producer.produce([record(`b${i}`, `${i}`)]));
    await Promise.all([first, ...rest]);
    expect(broker.calls.map((c) => c.topicMessages![0]!.messages.length)).toEqual([1, 30]);
    expect(broker.maxInFlight()).toBe(1);
    expect(producer.stats()).toMatchObject({ batchesSent: 2, recordsSent: 31, largestBatch: 30 });
  });

  it('splits a queue larger than batchMaxRecords into several sends', async () => {
    const broker = fakeBroker();
    const producer = batcher(broker.send, { batchMaxRecords: 10 });
    const acks = await producer.produce(Array.from({ length: 25 }, (_, i) => record('same-key', `${i}`)));
    expect(broker.calls.map((c) => c.topicMessages![0]!.messages.length)).toEqual([10, 10, 5]);
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 25 }, (_, i) => String(i)));
  });

  it('handles 64-bit offsets without rounding', async () => {
    const send: SendBatch = async (batch) =>
      batch.topicMessages!.flatMap(({ topic, messages }) =>
        [...new Set(messages.map((m) => m.partition!))].map((partition) => ({ topicName: topic, partition, errorCode: 0, baseOffset: '9007199254740993' })),
      );
    const acks = await batcher(send).produce([record('k', 'a'), record('k', 'b')]);
    expect(acks.map((a) => a.offset)).toEqual(['9007199254740993', '9007199254740994']);
  });

  it('spreads records without a key round-robin', async () => {
    const broker = fakeBroker();
    const acks = await batcher(broker.send).produce(Array.from({ length: 8 }, (_, i) => record(null, `${i}`)));
    expect(acks.map((a) => a.partition)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it('refuses a request that would overflow the queue, all or nothing', async () => {
    const broker = fakeBroker({ delayMs: 30 });
    const producer = batcher(broker.send, { maxQueuedRecords: 10, lingerMs: 50 });
    const accepted = producer.produce(Array.from({ length: 8 }, (_, i) => record(`k${i}`, 'x')));
    await expect(producer.produce([record('a', 'x'), record('b', 'x'), record('c', 'x')])).rejects.toBeInstanceOf(OverloadedError);
    await accepted;
    expect(broker.calls.flatMap((c) => c.topicMessages![0]!.messages)).toHaveLength(8);
  });

  it('fails every record of a failed send with a retryable error', async () => {
    const broker = fakeBroker({ fail: (call) => (call === 1 ? Object.assign(new Error('Connection error'), { name: 'KafkaJSConnectionError' }) : undefined) });
    const producer = batcher(broker.send);
    const failed = await Promise.allSettled([producer.produce([record('a', '1')]), producer.produce([record('b', '2')])]);
    for (const r of failed) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BrokerUnavailableError);
    }
    // The producer keeps working after a failure.
    await expect(producer.produce([record('c', '3')])).resolves.toHaveLength(1);
    expect(producer.stats()).toMatchObject({ batchesFailed: 1, batchesSent: 1 });
  });

  it('answers 503 at the deadline and never sends a request that already timed out', async () => {
    let release: () => void = () => {};
    const sent: number[] = [];
    const send: SendBatch = async (batch) => {
      sent.push(batch.topicMessages![0]!.messages.length);
      await new Promise<void>((r) => (release = r));
      return [{ topicName: 'orders', partition: partitionForKey('a', PARTITIONS), errorCode: 0, baseOffset: '0' }];
    };
    const producer = batcher(send, { timeoutMs: 100, lingerMs: 0 });
    const started = Date.now();
    const first = producer.produce([record('a', '1')]);
    await new Promise((r) => setTimeout(r, 10));
    const queued = producer.produce([record('b', '2')]);
    await expect(first).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(queued).rejects.toThrow(/did not acknowledge within 100 ms/);
    expect(Date.now() - started).toBeLessThan(500);
    release();
    await producer.close();
    expect(sent).toEqual([1]);
  });

  it('on close, sends what is queued, waits for it, then refuses new records', async () => {
    const broker = fakeBroker({ delayMs: 10 });
    const producer = batcher(broker.send, { lingerMs: 1000 });
    const pending = producer.produce([record('a', '1'), record('b', '2')]);
    await producer.close();
    await expect(pending).resolves.toHaveLength(2);
    await expect(producer.produce([record('c', '3')])).rejects.toBeInstanceOf(ShuttingDownError);
  });

  it('fails the records of a partition the broker answered with an error', async () => {
    const other = ['b', 'c', 'd', 'e', 'f', 'g'].find((k) => partitionForKey(k, PARTITIONS) !== partitionForKey('a', PARTITIONS))!;
    const pa = partitionForKey('a', PARTITIONS);
    const pb = partitionForKey(other, PARTITIONS);
    const send: SendBatch = async () => [
      { topicName: 'orders', partition: pa, errorCode: 0, baseOffset: '5' },
      { topicName: 'orders', partition: pb, errorCode: 6, baseOffset: '-1' },
    ];
    const producer = batcher(send);
    const [a, b] = await Promise.allSettled([producer.produce([record('a', '1')]), producer.produce([record(other, '2')])]);
    expect(a).toMatchObject({ status: 'fulfilled', value: [{ topic: 'orders', partition: pa, offset: '5' }] });
    expect(b).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringMatching(/error code 6/) }) });
  });
});
