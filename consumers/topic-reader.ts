import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../core/logger.ts';

/**
 * Reads a topic from its start to the end it has now (read committed), then
 * stops: what `sluice dlq` needs to list or replay a dead-letter topic. The
 * consumer group is a throwaway one that never commits and is deleted after.
 */

export interface TopicRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

export async function readTopicToEnd(kafka: Kafka, admin: Admin, topic: string, log: Logger, timeoutMs = 60_000): Promise<TopicRecord[]> {
  const ends = await admin.fetchTopicOffsets(topic);
  // The admin reads offsets read-committed: `high` is the last stable offset.
  const pending = new Map(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  const records: TopicRecord[] = [];
  if (pending.size === 0) return records;
  const groupId = `sluice-read-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, readUncommitted: false });
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  try {
    // Progress comes from the batch events, not eachBatch: kafkajs does not call
    // eachBatch for a batch holding only transaction markers, yet it does end a partition.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const end = pending.get(payload.partition);
      if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end) pending.delete(payload.partition);
      if (pending.size === 0) resolveDone();
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = pending.get(batch.partition);
        if (end === undefined) return;
        for (const message of batch.messages) if (BigInt(message.offset) < end) records.push({ topic, partition: batch.partition, message });
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`reading ${topic} did not reach its end within ${timeoutMs} ms (partitions left: ${[...pending.keys()].join(', ')})`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch((error: unknown) => log.warn({ err: error, groupId }, 'deleting the throwaway reader group failed'));
  }
  return records.sort((a, b) => a.partition - b.partition || (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
}
