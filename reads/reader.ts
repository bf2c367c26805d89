import { PositionError, type SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { FetchedBatch, Kafka, PartitionBatch } from '../kafka/index.ts';
import { headerMap, RecordDecoder, type TailRecord } from './decode.ts';
import type { FilterContext, RecordFilter } from './filter.ts';
import { resolvePositions, type PartitionRange, type PositionRequest } from './positions.ts';

export interface TailOptions {
  kafka: Kafka;
  registry: RegistryClient;
  logger: Logger;
  topics: readonly string[];
  position: PositionRequest;
  filter?: RecordFilter;
  /** Stop after this many records were passed on. */
  max?: number;
  /** Most bytes one fetch brings in (all partitions together, and per partition); by default large, to keep a backlog fast. */
  fetchBytes?: { maxBytes: number; maxBytesPerPartition: number };
  /** Decodes the records (one per registry: schemas are fetched once per id); by default the tail's own. */
  decoder?: RecordDecoder;
  /** Receives the records of each fetched batch that passed the filter, in offset order per partition; the next fetch waits for it. */
  onRecords(records: TailRecord[]): void | Promise<void>;
  /**
   * Without a filter, receives each fetched batch read in place instead of onRecords, and at most how many of its
   * records to show; returns how many it showed. For an output that writes the records from their bytes
   * (NdjsonEncoder.encodeFetched, which has `decoder` fetch the schemas it needs).
   */
  onFetched?(batch: FetchedBatch, limit: number): number | Promise<number>;
}

export interface TailResult {
  reason: 'max' | 'stopped';
  read: number;
  shown: number;
}

export interface Tail {
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
    headers: headerMap(record.headers),
    topic: record.topic,
    partition: record.partition,
    offset: Number(record.offset),
    timestamp: record.timestamp,
  };
}

/** The error for topics of which some do not exist, naming them all (a reader's metadata names only the first). */
async function unknownTopics(kafka: Kafka, topics: readonly string[], cause: unknown): Promise<unknown> {
  const admin = kafka.admin();
  try {
    const existing = new Set(await admin.listTopics());
    const unknown = topics.filter((t) => !existing.has(t));
    return unknown.length > 0 ? new PositionError(`no such topic: ${unknown.join(', ')}`) : cause;
  } finally {
    await admin.close();
  }
}

/**
 * Reads topics from exact offsets without disturbing anyone: a group-less
 * reader assigned the resolved partitions and offsets. It joins no group and
 * commits nothing, so it leaves no trace on the cluster. Each fetched batch is
 * decoded in one go (schemas fetched once per id) and handed over before the
 * next fetch from that broker.
 */
export async function startTail(options: TailOptions): Promise<Tail> {
  const { kafka, logger, filter, max } = options;
  // Short fetch waits keep --max and Ctrl-C prompt; large fetches keep a backlog fast. read_committed, as kcat
  // (librdkafka) and the read path: records of aborted transactions are not shown, and an open one holds the tail back.
  const reader = kafka.partitionReader({ readCommitted: true, maxWaitMs: 200, ...(options.fetchBytes ?? { maxBytes: 4 * 1024 * 1024, maxBytesPerPartition: 1024 * 1024 }) });
  let ranges: PartitionRange[];
  try {
    // On the reader's connection, whose metadata its first fetch then uses.
    ranges = await resolvePositions(reader, options.topics, options.position);
  } catch (error) {
    await reader.close().catch(() => undefined);
    throw (error as SluiceError).code === 'SLUICE_KAFKA_UNKNOWN_TOPIC' ? await unknownTopics(kafka, options.topics, error) : error;
  }
  reader.assign(ranges.map((r) => ({ topic: r.topic, partition: r.partition, offset: BigInt(r.start) })));

  const decoder = options.decoder ?? new RecordDecoder(options.registry);
  const onFetched = filter ? undefined : options.onFetched;

  let read = 0;
  let shown = 0;
  let finished = false;

  const onFetchedBatch = async (batch: FetchedBatch): Promise<void> => {
    if (finished || onFetched === undefined) return;
    const count = await onFetched(batch, max === undefined ? Infinity : max - shown);
    read += count;
    shown += count;
    if (max !== undefined && shown >= max) finished = true;
  };

  const onBatch = async (batch: PartitionBatch): Promise<void> => {
    if (finished || batch.records.length === 0) return;
    await decoder.prepare(batch.records);
    const passed: TailRecord[] = [];
    for (const message of batch.records) {
      read++;
      const record = decoder.decode(message);
      // An undecodable record cannot be judged by a filter, and hiding it would hide the problem.
      if (filter && !record.error && !filter(filterContext(record))) continue;
      passed.push(record);
      shown++;
      if (max !== undefined && shown >= max) {
        finished = true;
        break;
      }
    }
    if (passed.length > 0) await options.onRecords(passed);
  };

  let reason: TailResult['reason'] = 'stopped';
  const until = () => {
    if (finished && reason === 'stopped' && max !== undefined && shown >= max) reason = 'max';
    return finished;
  };
  const reading = onFetched ? reader.runFetched(onFetchedBatch, until) : reader.run(onBatch, until);
  const done = reading.then(
    async () => {
      await reader.close();
      return { reason, read, shown };
    },
    async (error: unknown) => {
      await reader.close().catch((closeError: unknown) => logger.warn({ err: closeError }, 'tail reader did not close cleanly'));
      throw error;
    },
  );
  // Callers await `done`; without this a failure before they do would be an unhandled rejection.
  done.catch(() => undefined);
  logger.info({ topics: options.topics, partitions: ranges.length }, 'tailing');
  return {
    ranges,
    done,
    stop: async () => {
      finished = true;
      await reader.stop();
      return done;
    },
    stats: () => ({ read, shown }),
  };
}
