import { DeadLetterReplayError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import type { Kafka, KafkaAdmin, KafkaRecord, OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { decodeFramed } from '../core/serde.ts';
import type { FilterContext, RecordFilter } from '../tail/filter.ts';
import { DLQ_HEADERS, headersToStrings, REPLAY_HEADER, REPLAYED_AT_HEADER } from './headers.ts';
import { readTopicToEnd } from './topic-reader.ts';
import { internalReplication } from '../topology/replication.ts';

/**
 * Dead letters: listing them, and replaying them to the topic they came from.
 *
 * Replaying twice does not duplicate: every replayed record is written in the
 * same Kafka transaction as a marker keyed `<partition>/<offset>` on the ledger
 * topic `<dlq>.replayed` (compacted). A replay first reads the ledger and skips
 * every dead letter already marked, so a second run, or a run after one that
 * crashed midway, re-produces only what was not replayed yet. The transactional
 * id is the same for every replay of one dead-letter topic, so two replays
 * running at once fence each other instead of both producing, and the ledger is
 * read after that fencing, so it is complete.
 */

export interface DeadLetter {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, string>;
  rawHeaders: RecordHeaders;
  errorClass: string | undefined;
  errorCode: string | undefined;
  errorMessage: string | undefined;
  attempts: string | undefined;
  originalTopic: string | undefined;
  originalPartition: number | undefined;
  originalOffset: string | undefined;
  failedAt: string | undefined;
  /** Set when `sluice dlq replay` already replayed it. */
  replayed?: { to: string; at: string };
}

/** One line for `sluice dlq inspect`. */
export function formatDeadLetter(letter: DeadLetter): string {
  const origin = letter.originalTopic === undefined ? '?' : `${letter.originalTopic}/${letter.originalPartition ?? '?'}/${letter.originalOffset ?? '?'}`;
  const code = letter.errorCode === undefined ? '' : ` [${letter.errorCode}]`;
  const attempts = letter.attempts === undefined ? '' : ` after ${letter.attempts} attempt(s)`;
  const replayed = letter.replayed ? `  (replayed to ${letter.replayed.to} at ${letter.replayed.at})` : '';
  return `${letter.partition}/${letter.offset}  key=${letter.key?.toString('utf8') ?? '(null)'}  from ${origin}  ${letter.failedAt ?? ''}  ${letter.errorClass ?? '?'}${code}${attempts}: ${letter.errorMessage ?? ''}${replayed}`;
}

/** A dead letter as JSON (`sluice dlq inspect --json`, the console): its bytes stay out, their length is given. */
export function deadLetterSummary(letter: DeadLetter) {
  return {
    partition: letter.partition,
    offset: letter.offset,
    key: letter.key?.toString('utf8') ?? null,
    timestamp: letter.timestamp,
    errorClass: letter.errorClass ?? null,
    errorCode: letter.errorCode ?? null,
    errorMessage: letter.errorMessage ?? null,
    attempts: letter.attempts === undefined ? null : Number(letter.attempts),
    original: { topic: letter.originalTopic ?? null, partition: letter.originalPartition ?? null, offset: letter.originalOffset ?? null },
    failedAt: letter.failedAt ?? null,
    replayed: letter.replayed ?? null,
    headers: letter.headers,
    valueBytes: letter.value?.length ?? 0,
  };
}

export const ledgerTopic = (deadLetterTopic: string) => `${deadLetterTopic}.replayed`;
export const replayTransactionalId = (deadLetterTopic: string) => `sluice-dlq-replay-${deadLetterTopic}`;
const ledgerKey = (partition: number, offset: string) => `${partition}/${offset}`;

function toDeadLetter(record: KafkaRecord): DeadLetter {
  const headers = headersToStrings(record.headers);
  const originalPartition = headers[DLQ_HEADERS.originalPartition];
  return {
    partition: record.partition,
    offset: record.offset.toString(),
    key: record.key,
    value: record.value,
    timestamp: record.timestamp.toString(),
    headers,
    rawHeaders: record.headers,
    errorClass: headers[DLQ_HEADERS.errorClass],
    errorCode: headers[DLQ_HEADERS.errorCode],
    errorMessage: headers[DLQ_HEADERS.errorMessage],
    attempts: headers[DLQ_HEADERS.attempts],
    originalTopic: headers[DLQ_HEADERS.originalTopic],
    originalPartition: originalPartition === undefined ? undefined : Number(originalPartition),
    originalOffset: headers[DLQ_HEADERS.originalOffset],
    failedAt: headers[DLQ_HEADERS.failedAt],
  };
}

async function readLedger(kafka: Kafka, admin: KafkaAdmin, deadLetterTopic: string): Promise<Map<string, { to: string; at: string }>> {
  const ledger = new Map<string, { to: string; at: string }>();
  const topics = await admin.listTopics();
  if (!topics.includes(ledgerTopic(deadLetterTopic))) return ledger;
  for (const record of await readTopicToEnd(kafka, ledgerTopic(deadLetterTopic))) {
    const key = record.key?.toString('utf8');
    if (key === undefined || record.value === null) continue;
    ledger.set(key, JSON.parse(record.value.toString('utf8')) as { to: string; at: string });
  }
  return ledger;
}

export interface ReadDeadLettersOptions {
  kafka: Kafka;
  admin: KafkaAdmin;
  log: Logger;
  topic: string;
}

/** Every dead letter on the topic now, each marked with its replay if it had one. */
export async function readDeadLetters(options: ReadDeadLettersOptions): Promise<DeadLetter[]> {
  const { kafka, admin, topic } = options;
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new DeadLetterReplayError(`topic ${topic} does not exist`);
  const ledger = await readLedger(kafka, admin, topic);
  return (await readTopicToEnd(kafka, topic)).map((record) => {
    const letter = toDeadLetter(record);
    const replayed = ledger.get(ledgerKey(letter.partition, letter.offset));
    return replayed ? { ...letter, replayed } : letter;
  });
}

/** What a --where filter sees of a dead letter: the value decoded when it can be (a poison record cannot: null). */
export async function filterContext(letter: DeadLetter, topic: string, registry: RegistryClient | undefined): Promise<FilterContext> {
  let value: unknown = null;
  if (registry && letter.value !== null) {
    value = await decodeFramed(registry, letter.value).then(
      (decoded) => decoded.value,
      (error: unknown) => {
        if ((error as { retryable?: unknown }).retryable === true) throw error;
        return null;
      },
    );
  }
  return {
    value,
    key: letter.key?.toString('utf8') ?? null,
    headers: letter.headers,
    topic,
    partition: letter.partition,
    offset: Number(letter.offset),
    timestamp: Number(letter.timestamp),
  };
}

export interface ReplayOptions extends ReadDeadLettersOptions {
  /** Target topic; by default each record's original topic (its sluice.original.topic header). */
  to?: string;
  filter?: RecordFilter;
  /** Needed only when the filter reads `value`. */
  registry?: RegistryClient;
  dryRun: boolean;
  /** Records per transaction. */
  chunkSize?: number;
}

export interface ReplayPlanItem {
  letter: DeadLetter;
  to: string;
}

export interface ReplayResult {
  replayed: ReplayPlanItem[];
  alreadyReplayed: DeadLetter[];
  filteredOut: number;
}

/** The record to re-produce: original key, bytes and headers, without the failure headers, with where it came from. */
export function replayMessage(letter: DeadLetter, deadLetterTopic: string, to: string, at: Date): OutgoingRecord {
  const failure = new Set<string>(Object.values(DLQ_HEADERS));
  const headers: [string, Buffer | null][] = letter.rawHeaders.filter(([name]) => !failure.has(name)).map(([name, value]) => [name, value]);
  headers.push([REPLAY_HEADER, Buffer.from(`${deadLetterTopic}/${letter.partition}/${letter.offset}`)]);
  headers.push([REPLAYED_AT_HEADER, Buffer.from(at.toISOString())]);
  // Back to its original partition when it goes back to its original topic, so it stays with its key's other records.
  const samePartition = to === letter.originalTopic && letter.originalPartition !== undefined;
  return { topic: to, key: letter.key, value: letter.value, headers, ...(samePartition ? { partition: letter.originalPartition } : {}) };
}

export async function replayDeadLetters(options: ReplayOptions): Promise<ReplayResult> {
  const { kafka, admin, log, topic, filter, dryRun } = options;
  const chunkSize = options.chunkSize ?? 500;
  // Fence any other replay of this topic before reading the ledger, so the ledger read is complete.
  const producer = dryRun ? undefined : kafka.producer({ name: 'dlq-replay', transactionalId: replayTransactionalId(topic), retry: retryPolicies.transaction });
  try {
    if (producer) {
      const { replicationFactor, configs } = internalReplication((await admin.describeCluster()).brokers.length);
      await admin.createTopics([{ name: ledgerTopic(topic), partitions: 1, replicationFactor, configs: { 'cleanup.policy': 'compact', ...configs } }]);
      await producer.connect([ledgerTopic(topic)]);
    }
    const letters = await readDeadLetters(options);
    const result: ReplayResult = { replayed: [], alreadyReplayed: [], filteredOut: 0 };
    for (const letter of letters) {
      if (filter && !filter(await filterContext(letter, topic, options.registry))) {
        result.filteredOut++;
        continue;
      }
      if (letter.replayed) {
        result.alreadyReplayed.push(letter);
        continue;
      }
      const to = options.to ?? letter.originalTopic;
      if (to === undefined) {
        throw new DeadLetterReplayError(`${topic} ${letter.partition}/${letter.offset} has no ${DLQ_HEADERS.originalTopic} header; name the target with --to`);
      }
      result.replayed.push({ letter, to });
    }
    if (!producer) return result;
    for (let start = 0; start < result.replayed.length; start += chunkSize) {
      const chunk = result.replayed.slice(start, start + chunkSize);
      const at = new Date();
      const records: OutgoingRecord[] = chunk.map(({ letter, to }) => replayMessage(letter, topic, to, at));
      for (const { letter, to } of chunk) {
        records.push({ topic: ledgerTopic(topic), partition: 0, key: Buffer.from(ledgerKey(letter.partition, letter.offset)), value: Buffer.from(JSON.stringify({ to, at: at.toISOString() })) });
      }
      await producer.sendTransaction(records);
      log.info({ topic, replayed: start + chunk.length, of: result.replayed.length }, 'dead letters replayed');
    }
    return result;
  } finally {
    await producer?.close();
  }
}
