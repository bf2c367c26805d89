import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { RecordDecoder, type TailRecord } from './decode.ts';
import type { FilterContext, RecordFilter } from './filter.ts';
import { PositionError, resolvePositions, type PartitionRange, type PositionRequest } from './positions.ts';

export interface TailOptions {
  kafka: Kafka;
  registry: RegistryClient;
  logger: Logger;
  topics: readonly string[];
  position: PositionRequest;
  filter?: RecordFilter;
  /** Stop after this many records were passed on. */
  max?: number;
  /** Receives the records of each fetched batch that passed the filter, in offset order per partition. */
  onRecords(records: TailRecord[]): void | Promise<void>;
}

export interface TailResult {
  reason: 'max' | 'stopped';
  read: number;
  shown: number;
}

export interface Tail {
  /** The throwaway consumer group (it never commits an offset). */
  readonly groupId: string;
  readonly ranges: readonly PartitionRange[];
  /** Settles when --max is reached or stop() is called; rejects if reading fails. */
  readonly done: Promise<TailResult>;
  stop(): Promise<TailResult>;
  stats(): { read: number; shown: number };
}

function filterContext(record: TailRecord): FilterContext {
  return {
    value: record.value,
    key: record.key,
    headers: record.headers,
    topic: record.topic,
    partition: record.partition,
    offset: Number(record.offset),
    timestamp: record.timestamp,
  };
}

const partitionKey = (topic: string, partition: number) => `${partition}:${topic}`;

/**
 * Reads topics from exact offsets without disturbing anyone: kafkajs has no
 * assign(), so the tail joins a group of its own (a fresh id each run), never
 * commits, and seeks every partition to the resolved offsets as soon as it
 * joins, before the first fetch.
 */
export async function startTail(options: TailOptions): Promise<Tail> {
  const { kafka, logger, filter, max } = options;
  const admin = kafka.admin();
  await admin.connect();
  let ranges: PartitionRange[];
  let excluded: { topic: string; partitions: number[] }[];
  try {
    const existing = new Set(await admin.listTopics());
    const unknown = options.topics.filter((t) => !existing.has(t));
    if (unknown.length > 0) throw new PositionError(`no such topic: ${unknown.join(', ')}`);
    ({ ranges, excluded } = await resolvePositions(admin, options.topics, options.position));
  } finally {
    await admin.disconnect();
  }

  const groupId = `sluice-tail-${randomUUID()}`;
  const next = new Map(ranges.map((r) => [partitionKey(r.topic, r.partition), r.start]));
  const decoder = new RecordDecoder(options.registry);
  const consumer: Consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    // Short fetch waits keep --max and Ctrl-C prompt; large fetches keep a backlog fast.
    maxWaitTimeInMs: 200,
    maxBytes: 64 * 1024 * 1024,
    maxBytesPerPartition: 16 * 1024 * 1024,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });

  let read = 0;
  let shown = 0;
  let finished = false;
  let settle!: (result: TailResult) => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<TailResult>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Callers await `done`; without this a failure before they do would be an unhandled rejection.
  done.catch(() => undefined);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= consumer.disconnect());
  const finish = (reason: TailResult['reason']): Promise<TailResult> => {
    finished = true;
    return close().then(
      () => {
        const result = { reason, read, shown };
        settle(result);
        return result;
      },
      (error: unknown) => {
        fail(error);
        throw error;
      },
    );
  };
  const abort = (error: unknown): void => {
    finished = true;
    close().then(
      () => fail(error),
      (closeError: unknown) => {
        logger.warn({ err: closeError, groupId }, 'tail consumer did not disconnect cleanly');
        fail(error);
      },
    );
  };

  consumer.on(consumer.events.GROUP_JOIN, () => {
    // Also on a later rejoin: resume where this tail got to, not where it started.
    for (const [key, offset] of next) {
      const [partition, ...topic] = key.split(':');
      consumer.seek({ topic: topic.join(':'), partition: Number(partition), offset });
    }
    // A --partition tail still subscribes to whole topics: the other partitions are never fetched.
    if (excluded.length > 0) consumer.pause(excluded);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    if (!event.payload.restart) abort(event.payload.error);
  });

  const eachBatch = async ({ batch, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const key = partitionKey(batch.topic, batch.partition);
    if (finished || !next.has(key) || batch.messages.length === 0) return;
    try {
      await decoder.prepare(batch.messages);
      const passed: TailRecord[] = [];
      let last: string | undefined;
      for (const message of batch.messages) {
        if (finished || !isRunning() || isStale()) break;
        read++;
        last = message.offset;
        const record = decoder.decode(batch.topic, batch.partition, message);
        // An undecodable record cannot be judged by a filter, and hiding it would hide the problem.
        if (filter && !record.error && !filter(filterContext(record))) continue;
        passed.push(record);
        shown++;
        if (max !== undefined && shown >= max) {
          finished = true;
          break;
        }
      }
      if (last !== undefined) next.set(key, (BigInt(last) + 1n).toString());
      if (passed.length > 0) await options.onRecords(passed);
      // disconnect() waits for this batch handler, so it must not be awaited from inside it.
      if (finished && closing === undefined) setImmediate(() => void finish('max').catch(() => undefined));
    } catch (error) {
      abort(error);
    }
  };

  await consumer.connect();
  await consumer.subscribe({ topics: [...new Set(ranges.map((r) => r.topic))], fromBeginning: false });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: Math.min(ranges.length, 8),
    eachBatch,
  });
  logger.info({ groupId, topics: options.topics, partitions: ranges.length }, 'tailing');
  return {
    groupId,
    ranges,
    done,
    stop: () => (closing ? done : finish('stopped')),
    stats: () => ({ read, shown }),
  };
}
