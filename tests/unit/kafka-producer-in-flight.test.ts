import { Producer, type MessageToProduce } from '@platformatic/kafka';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { retryPolicies } from '../../core/retry.ts';
import { KafkaProducer } from '../../kafka/producer.ts';
import type { OutgoingRecord } from '../../kafka/types.ts';

/**
 * The seam's producer keeps one produce request in flight (kafka/producer.ts says why: with two, the client's
 * recovery from OUT_OF_ORDER_SEQUENCE_NUMBER writes records twice and out of order). The client underneath is
 * faked at its send(), which answers when the test says so.
 */

interface Request {
  messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[];
  answer(): void;
}

function fakeClient(): { requests: Request[]; most: () => number } {
  const requests: Request[] = [];
  let inFlight = 0;
  let most = 0;
  // Idempotent: the producer id is known, so the seam asks for none.
  vi.spyOn(Producer.prototype, 'producerId', 'get').mockReturnValue(7n);
  vi.spyOn(Producer.prototype, 'send').mockImplementation(function (options: { messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] }) {
    inFlight += 1;
    most = Math.max(most, inFlight);
    const base = BigInt(requests.length * 1000);
    return new Promise((resolve) =>
      requests.push({
        messages: options.messages,
        answer: () => {
          inFlight -= 1;
          // One base offset per partition of the request, as the broker answers.
          const partitions = [...new Set(options.messages.map((m) => m.partition!))];
          resolve({ offsets: partitions.map((partition) => ({ topic: 't', partition, offset: base + BigInt(partition * 100) })) });
        },
      }),
    ) as never;
  } as never);
  return { requests, most: () => most };
}

const record = (partition: number, text: string): OutgoingRecord => ({ topic: 't', partition, key: null, value: Buffer.from(text) });

describe('KafkaProducer: produce requests in flight', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('keeps one request in flight; the sends made meanwhile go out together in the next, in call order, each answered with its own offsets', async () => {
    const client = fakeClient();
    const config = loadConfig({}, { logLevel: 'silent' });
    const producer = new KafkaProducer(config, createLogger(config, 'test'), { name: 'test', retry: retryPolicies.produce(1000) });
    try {
      const first = producer.send([record(0, 'a'), record(1, 'b')]);
      await vi.waitFor(() => expect(client.requests).toHaveLength(1));
      // Three sends while the first request is unanswered, two of them on partition 0 behind the first's record.
      const later = [producer.send([record(0, 'c')]), producer.send([record(1, 'd'), record(0, 'e')]), producer.send([record(2, 'f')])];
      await new Promise((resolve) => setImmediate(resolve));
      expect(client.requests).toHaveLength(1);
      client.requests[0]!.answer();
      await vi.waitFor(() => expect(client.requests).toHaveLength(2));
      expect(client.requests[1]!.messages.map((m) => m.value!.toString())).toEqual(['c', 'd', 'e', 'f']);
      client.requests[1]!.answer();
      expect((await first).map((m) => m.offset)).toEqual([0n, 100n]);
      expect((await Promise.all(later)).map((metadata) => metadata.map((m) => m.offset))).toEqual([[1000n], [1100n, 1001n], [1200n]]);
      expect(client.most()).toBe(1);
    } finally {
      client.requests.forEach((r) => r.answer());
    }
  });
});
