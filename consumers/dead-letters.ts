import { DeadLetterReplayError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import type { Kafka, KafkaAdmin, KafkaRecord, OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { decodeFramed } from '../core/serde.ts';
import type { FilterContext, RecordFilter } from '../reads/filter.ts';
import { DLQ_HEADERS, headersToStrings, REPLAY_HEADER, REPLAYED_AT_HEADER } from './headers.ts';
import { RULE_HEADERS } from '../rules/index.ts';
import { readTopicToEnd } from './topic-reader.ts';
import { internalReplication } from '../broker/replication.ts';
import type { Topology } from '../topology/model.ts';

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

function ruleReason(headers: Record<string, string>): string {
  const version = headers[RULE_HEADERS.version] === undefined ? '' : ` version ${headers[RULE_HEADERS.version]}`;
  const mode = headers[RULE_HEADERS.mode] === undefined ? '' : ` (${headers[RULE_HEADERS.mode]})`;
  const why = headers[RULE_HEADERS.exception] === undefined ? '' : `: ${headers[RULE_HEADERS.exception]}`;
  return `rule ${headers[RULE_HEADERS.name]} of ${headers[RULE_HEADERS.subject] ?? '?'}${version}${mode}${why}`;
}

function toDeadLetter(record: KafkaRecord): DeadLetter {
  const headers = headersToStrings(record.headers);
  const rule = headers[RULE_HEADERS.name];
  const originalPartition = headers[DLQ_HEADERS.originalPartition];
  return {
    partition: record.partition,
    offset: record.offset.toString(),
    key: record.key,
    value: record.value,
    timestamp: record.timestamp.toString(),
    headers,
    rawHeaders: record.headers,
    // A data-contract rule's dead letter (DLQ action) says why in Confluent's `__rule.*` headers instead.
    errorClass: headers[DLQ_HEADERS.errorClass] ?? (rule === undefined ? undefined : 'RuleFailed'),
    errorCode: headers[DLQ_HEADERS.errorCode] ?? (rule === undefined ? undefined : 'SLUICE_RULE_FAILED'),
    errorMessage: headers[DLQ_HEADERS.errorMessage] ?? (rule === undefined ? undefined : ruleReason(headers)),
    attempts: headers[DLQ_HEADERS.attempts],
    originalTopic: headers[DLQ_HEADERS.originalTopic] ?? headers[RULE_HEADERS.topic],
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

/** Most dead letters one page holds (the console's view). */
export const DEAD_LETTER_PAGE_MAX = 200;
/** Most bytes one fetch of a page brings in: a page of large letters is read in several small fetches, never a whole topic. */
const PAGE_FETCH_BYTES = 1024 * 1024;

export interface DeadLetterPosition {
  partition: number;
  offset: bigint;
}

export interface DeadLetterPage {
  letters: ReturnType<typeof deadLetterSummary>[];
  /** Where the next page starts; undefined after the last letter there is now. */
  next: DeadLetterPosition | undefined;
}

/**
 * One page of a dead-letter topic: up to `limit` letters from `from` on
 * (partition by partition, in offset order), as summaries (their bytes are
 * not kept), each marked with its replay. Memory is bounded by the page, not
 * the topic: each partition is read with small fetches until the page is full
 * or the partition's end as it was when the page was asked for.
 */
export async function readDeadLetterPage(options: ReadDeadLettersOptions & { from?: DeadLetterPosition; limit: number }): Promise<DeadLetterPage> {
  const { kafka, admin, topic } = options;
  const limit = Math.min(Math.max(1, options.limit), DEAD_LETTER_PAGE_MAX);
  const [earliest, latest] = await Promise.all([admin.listOffsets(topic, 'earliest'), admin.listOffsets(topic, 'latest', { readCommitted: true })]);
  const ledger = await readLedger(kafka, admin, topic);
  const letters: DeadLetterPage['letters'] = [];
  for (const partition of [...latest.keys()].sort((a, b) => a - b)) {
    if (options.from && partition < options.from.partition) continue;
    const low = earliest.get(partition) ?? 0n;
    const end = latest.get(partition)!;
    const wanted = options.from?.partition === partition ? options.from.offset : low;
    const start = wanted < low ? low : wanted;
    if (start >= end) continue;
    let after = start;
    const reader = kafka.partitionReader({ readCommitted: true, maxWaitMs: 200, maxBytes: PAGE_FETCH_BYTES, maxBytesPerPartition: PAGE_FETCH_BYTES });
    try {
      reader.assign([{ topic, partition, offset: start }]);
      await reader.run(
        async (batch) => {
          for (const record of batch.records) {
            if (letters.length >= limit || record.offset >= end) return;
            const letter = toDeadLetter(record);
            const replayed = ledger.get(ledgerKey(letter.partition, letter.offset));
            letters.push(deadLetterSummary(replayed ? { ...letter, replayed } : letter));
            after = record.offset + 1n;
          }
        },
        (positions) => letters.length >= limit || positions.every((p) => p.offset >= end),
      );
    } finally {
      await reader.close();
    }
    if (letters.length >= limit) return { letters, next: after < end ? { partition, offset: after } : nextPartition(latest, earliest, partition) };
  }
  return { letters, next: undefined };
}

/** The first position after `partition` that still has letters, if any. */
function nextPartition(latest: Map<number, bigint>, earliest: Map<number, bigint>, partition: number): DeadLetterPosition | undefined {
  for (const p of [...latest.keys()].sort((a, b) => a - b)) {
    if (p > partition && (earliest.get(p) ?? 0n) < latest.get(p)!) return { partition: p, offset: earliest.get(p) ?? 0n };
  }
  return undefined;
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

/**
 * The topics a replay of `deadLetterTopic` may write to: those whose records
 * dead-letter into it, by the topology (the inputs of the workers and the
 * topics of the bridges that name it as their `deadLetter`). A letter's
 * sluice.original.topic header is only a claim (a record from outside could
 * have carried it): a replay follows it only into one of these.
 */
export function replayTargets(topology: Pick<Topology, 'workers' | 'bridges'>, deadLetterTopic: string): Set<string> {
  const targets = new Set<string>();
  for (const worker of topology.workers) if (worker.deadLetter === deadLetterTopic) targets.add(worker.input);
  for (const bridge of topology.bridges ?? []) if (bridge.deadLetter === deadLetterTopic) targets.add(bridge.topic);
  return targets;
}

export interface ReplayOptions extends ReadDeadLettersOptions {
  /** Target topic; by default each record's original topic (its sluice.original.topic header). */
  to?: string;
  /** The only topics the replay may write to (replayTargets, or the operator's --to): a letter bound elsewhere stops the replay before anything is written. */
  targets: ReadonlySet<string>;
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
      if (!options.targets.has(to)) {
        throw new DeadLetterReplayError(
          `${topic} ${letter.partition}/${letter.offset} names ${JSON.stringify(to.slice(0, 249))} as its topic, which is not one whose records dead-letter into ${topic} by the topology (${[...options.targets].join(', ') || 'none'}); nothing was replayed`,
        );
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
    // A listing right after the replay (the console re-reads the page) must show the letters replayed.
    if (result.replayed.length > 0 && !(await admin.untilStable(ledgerTopic(topic), 10_000))) {
      log.warn({ topic: ledgerTopic(topic) }, 'dead letters replayed, but the ledger did not become readable within 10 s; listings may show them as not replayed for a while');
    }
    return result;
  } finally {
    await producer?.close();
  }
}
