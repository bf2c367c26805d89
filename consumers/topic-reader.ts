import type { Kafka, KafkaRecord } from '../kafka/index.ts';
import { withDeadline } from '../core/deadline.ts';

/**
 * Reads a topic from its start to the end it has now (read committed: up to the
 * last stable offset, aborted transactions left out), then stops: what
 * `sluice dlq` needs to list or replay a dead-letter topic. No consumer group.
 */
export async function readTopicToEnd(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<KafkaRecord[]> {
  const reader = kafka.partitionReader({ readCommitted: true, maxWaitMs: 200 });
  try {
    const records = await withDeadline(reader.readToEnd([topic]), timeoutMs, () => {
      throw new Error(`reading ${topic} did not reach its end within ${timeoutMs} ms`);
    });
    return records.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1));
  } finally {
    await reader.close();
  }
}
