import { describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { BrokerUnavailableError, OverloadedError, ShuttingDownError } from '../../core/errors.ts';
import { partitionForKey } from '../../kafka/partitioner.ts';
import { Placer } from '../../kafka/producer.ts';
import type { OutgoingRecord, RecordMetadata } from '../../kafka/types.ts';
import { BatchingProducer, type SendRecords } from '../../producers/batching-producer.ts';

const logger = pino({ level: 'silent' });
const PARTITIONS = 4;

/** A broker that holds each send until release() acknowledges it; `sent`: the records of each send, in order. */
function heldBroker() {
  const sent: number[] = [];
  let acknowledge = () => {};
  const send: SendRecords = async (records) => {
    sent.push(records.length);
    await new Promise<void>((r) => (acknowledge = r));
    return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: BigInt(i) }));
  };
  return { send, sent, release: () => acknowledge() };
}

/**
 * A fake seam producer over a fake broker: places records as the seam does and
 * appends them to per-partition logs in the order sends were made, answering
 * each record with its own offset.
 */
function fakeBroker(options: { delayMs?: number | ((call: number) => number); fail?: (call: number) => Error | undefined } = {}) {
  const logs = new Map<string, { key: string | null; value: string }[]>();
  const calls: OutgoingRecord[][] = [];
  const placer = new Placer();
  let inFlight = 0;
  let maxInFlight = 0;
  const send: SendRecords = async (records) => {
    calls.push(records);
    const call = calls.length;
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // Written at once, in send order (the broker's per-partition order); answered after the delay.
    const { partitions } = placer.place(records, () => PARTITIONS);
    const failure = options.fail?.(call);
    const out: RecordMetadata[] = records.map((r, i) => {
      const partition = partitions[i]!;
      const log = logs.get(`${r.topic}/${partition}`) ?? [];
      logs.set(`${r.topic}/${partition}`, log);
      if (!failure) log.push({ key: r.key?.toString() ?? null, value: r.value!.toString() });
      return { topic: r.topic, partition, offset: BigInt(log.length - 1) };
    });
    try {
      const delay = typeof options.delayMs === 'function' ? options.delayMs(call) : (options.delayMs ?? 1);
      await new Promise((r) => setTimeout(r, delay));
      if (failure) throw failure;
      return out;
    } finally {
      inFlight -= 1;
    }
  };
  return { send, calls, logs, maxInFlight: () => maxInFlight };
}

function batcher(send: SendRecords, over: Partial<ConstructorParameters<typeof BatchingProducer>[0]> = {}) {
  return new BatchingProducer({
    send,
    lingerMs: 2,
    batchMaxRecords: 100,
    maxQueuedRecords: 1000,
    timeoutMs: 2000,
    logger,
    ...over,
  });
}

const record = (key: string | null, value: string, topic = 'orders'): OutgoingRecord => ({ topic, key: key === null ? null : Buffer.from(key), value: Buffer.from(value), headers: [] });

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
  });

  it('keeps at most maxInFlight sends outstanding and coalesces what arrives meanwhile', async () => {
    const broker = fakeBroker({ delayMs: 20 });
    const producer = batcher(broker.send, { lingerMs: 0, maxInFlight: 2 });
    const first = producer.produce([record('a', '1')]);
    await new Promise((r) => setImmediate(r));
    const second = producer.produce([record('b', '2')]);
    await new Promise((r) => setImmediate(r));
    // Both slots taken: these wait for the first answer and go out together.
    const rest = Array.from({ length: 30 }, (_, i) => producer.produce([record(`c${i}`, `${i}`)]));
    await Promise.all([first, second, ...rest]);
    expect(broker.calls.map((c) => c.length)).toEqual([1, 1, 30]);
    expect(broker.maxInFlight()).toBe(2);
    expect(producer.stats()).toMatchObject({ batchesSent: 3, recordsSent: 32, largestBatch: 30, inFlight: 0 });
  });

  it('keeps the order of one key across sends in flight together, and each record its own offset', async () => {
    // Later sends answer first: the acknowledgement order must not matter.
    const broker = fakeBroker({ delayMs: (call) => Math.max(1, 30 - call * 5) });
    const producer = batcher(broker.send, { lingerMs: 0, batchMaxRecords: 3, maxInFlight: 5 });
    const requests = Array.from({ length: 15 }, (_, i) => producer.produce([record('same', `${i}`)]));
    const acks = await Promise.all(requests);
    expect(broker.maxInFlight()).toBeGreaterThan(1);
    expect(broker.maxInFlight()).toBeLessThanOrEqual(5);
    expect(acks.map((a) => a[0]!.offset)).toEqual(Array.from({ length: 15 }, (_, i) => String(i)));
    expect(broker.logs.get(`orders/${partitionForKey('same', PARTITIONS)}`)!.map((r) => r.value)).toEqual(Array.from({ length: 15 }, (_, i) => `${i}`));
  });

  it('splits a queue larger than batchMaxRecords into several sends', async () => {
    const broker = fakeBroker();
    const producer = batcher(broker.send, { batchMaxRecords: 10 });
    const acks = await producer.produce(Array.from({ length: 25 }, (_, i) => record('same-key', `${i}`)));
    expect(broker.calls.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 25 }, (_, i) => String(i)));
  });

  it('handles 64-bit offsets without rounding', async () => {
    const send: SendRecords = async (records) => records.map((r, i) => ({ topic: r.topic, partition: 0, offset: 9007199254740993n + BigInt(i) }));
    const acks = await batcher(send).produce([record('k', 'a'), record('k', 'b')]);
    expect(acks.map((a) => a.offset)).toEqual(['9007199254740993', '9007199254740994']);
  });

  it('refuses a request that would overflow the queue, all or nothing', async () => {
    const broker = fakeBroker({ delayMs: 30 });
    const producer = batcher(broker.send, { maxQueuedRecords: 10, lingerMs: 50 });
    const accepted = producer.produce(Array.from({ length: 8 }, (_, i) => record(`k${i}`, 'x')));
    await expect(producer.produce([record('a', 'x'), record('b', 'x'), record('c', 'x')])).rejects.toBeInstanceOf(OverloadedError);
    await accepted;
    expect(broker.calls.flat()).toHaveLength(8);
  });

  it('fails every record of a failed send with a retryable error', async () => {
    const broker = fakeBroker({ fail: (call) => (call === 1 ? new BrokerUnavailableError('Kafka is unreachable') : undefined) });
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
    const { send, sent, release } = heldBroker();
    // Fake timers: "at the deadline" is asserted on the clock the producer reads, not on a loaded machine's.
    vi.useFakeTimers();
    try {
      const producer = batcher(send, { timeoutMs: 100, lingerMs: 0, maxInFlight: 1 });
      const answered: string[] = [];
      const first = producer.produce([record('a', '1')]);
      first.catch(() => answered.push('first'));
      await vi.advanceTimersByTimeAsync(10);
      const queued = producer.produce([record('b', '2')]);
      queued.catch(() => answered.push('queued'));
      await vi.advanceTimersByTimeAsync(89);
      expect(answered).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      await expect(first).rejects.toBeInstanceOf(BrokerUnavailableError);
      // The 503 says whether the records may be written after all: the first was sent, the queued one never is.
      await expect(first).rejects.toThrow('Kafka did not acknowledge within 100 ms; the record was sent and may be written: retry with an Idempotency-Key to have it written once');
      expect(answered).toEqual(['first']);
      await vi.advanceTimersByTimeAsync(10);
      await expect(queued).rejects.toThrow('Kafka did not acknowledge within 100 ms; nothing was sent, and nothing will be: retry');
      release();
      await vi.runAllTimersAsync();
      await producer.close();
      expect(sent).toEqual([1]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("says at the deadline how many of a request's records were sent (those may be written; the rest never are)", async () => {
    const { send, sent, release } = heldBroker();
    vi.useFakeTimers();
    try {
      // One record per send, one send at a time: of a request of three, one goes out before the deadline.
      const producer = batcher(send, { timeoutMs: 100, lingerMs: 0, maxInFlight: 1, batchMaxRecords: 1 });
      const three = producer.produce([record('a', '1'), record('b', '2'), record('c', '3')]);
      three.catch(() => undefined);
      await vi.advanceTimersByTimeAsync(100);
      await expect(three).rejects.toThrow('Kafka did not acknowledge within 100 ms; 1 of the 3 records were sent and may be written');
      release();
      await vi.runAllTimersAsync();
      await producer.close();
      // The two not sent before the answer are never sent.
      expect(sent).toEqual([1]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('on close, sends what is queued, waits for it, then refuses new records', async () => {
    const broker = fakeBroker({ delayMs: 10 });
    const producer = batcher(broker.send, { lingerMs: 1000 });
    const pending = producer.produce([record('a', '1'), record('b', '2')]);
    await producer.close();
    await expect(pending).resolves.toHaveLength(2);
    await expect(producer.produce([record('c', '3')])).rejects.toBeInstanceOf(ShuttingDownError);
  });

  it('fails a record the producer answered without an offset', async () => {
    const send: SendRecords = async (records) => records.map((r, i) => ({ topic: r.topic, partition: i, offset: i === 0 ? 5n : -1n }));
    const producer = batcher(send);
    const [a, b] = await Promise.allSettled([producer.produce([record('a', '1')]), producer.produce([record('b', '2')])]);
    expect(a).toMatchObject({ status: 'fulfilled', value: [{ topic: 'orders', partition: 0, offset: '5' }] });
    expect(b).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringMatching(/did not answer with an offset for orders\[1\]/) }) });
  });
});
