import { ReservedHeaderError, RuleViolationError, SluiceError } from '../core/errors.ts';
import type { KafkaRecord, OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import { RULE_HEADERS, ruleHeaders } from '../rules/index.ts';

/** Record headers the worker runtime reads and writes. */

/** Carried from input to every output, so one request can be followed across topics. */
export const CORRELATION_HEADER = 'correlation-id';
/** Also accepted on input: the HTTP header name, for producers that copy it verbatim. */
const CORRELATION_ALIASES = [CORRELATION_HEADER, 'x-correlation-id'] as const;
/** `<topic>/<partition>/<offset>` of the input an output was derived from. */
export const SOURCE_HEADER = 'sluice-source';

export const DLQ_HEADERS = {
  errorClass: 'sluice.error.class',
  errorCode: 'sluice.error.code',
  errorMessage: 'sluice.error.message',
  originalTopic: 'sluice.original.topic',
  originalPartition: 'sluice.original.partition',
  originalOffset: 'sluice.original.offset',
  originalTimestamp: 'sluice.original.timestamp',
  failedAt: 'sluice.failed.at',
  /** How many times the handler was tried (retryable failures are retried up to workerMaxAttempts). */
  attempts: 'sluice.error.attempts',
} as const;

/** On a record re-produced from a dead-letter topic by `sluice dlq replay`: `<dlq topic>/<partition>/<offset>`. */
export const REPLAY_HEADER = 'sluice.replay.of';
export const REPLAYED_AT_HEADER = 'sluice.replayed.at';

/**
 * Header names only Sluice sets: every `sluice.*` header (the principal that
 * produced, a dead letter's origin and error, a replay's source) and
 * `sluice-source`. A message entering from outside must not carry them: a
 * forged `sluice.original.topic` would choose where a replay writes, a forged
 * `sluice.principal` who produced.
 */
export const RESERVED_HEADER_PREFIX = 'sluice.';

export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith(RESERVED_HEADER_PREFIX) || lower === SOURCE_HEADER;
}

/** Where a reserved header of a refused message is kept in its dead letter: renamed, so nothing is dropped and nothing is trusted. */
export const REFUSED_HEADER_PREFIX = 'refused-header.';

/**
 * THE check every entry from outside runs on the headers it would copy into
 * Kafka (today the RabbitMQ → Kafka bridge; the ingress copies no client
 * header): throws ReservedHeaderError naming the reserved ones.
 */
export function refuseReservedHeaders(names: Iterable<string>, entry: string): void {
  const reserved = [...names].filter(isReservedHeader);
  if (reserved.length > 0) throw new ReservedHeaderError(reserved, entry);
}

/** `headers` with every reserved name renamed under REFUSED_HEADER_PREFIX (for the dead letter of a refused message). */
export function renameReservedHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[isReservedHeader(name) ? `${REFUSED_HEADER_PREFIX}${name}` : name] = value;
  return out;
}

const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set([...Object.values(DLQ_HEADERS), ...Object.values(RULE_HEADERS)]);

/** Headers are bounded by the broker's max message size; a stack-trace-sized message must not make the dead letter itself unproducible. */
const MAX_ERROR_MESSAGE = 4096;

/** Header values as UTF-8 strings; a repeated header keeps its last value, a null value reads as ''. */
export function headersToStrings(headers: RecordHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) out[name] = value === null ? '' : value.toString('utf8');
  return out;
}

export function correlationIdOf(headers: Record<string, string>, source: { topic: string; partition: number; offset: bigint | string }): string {
  for (const name of CORRELATION_ALIASES) {
    const value = headers[name];
    if (value !== undefined && value !== '') return value;
  }
  // Derived from the record's position so a replay gets the same id.
  return `${source.topic}/${source.partition}/${source.offset}`;
}

/** The class of an error as dead-letter headers and logs name it: `DecodeError`, `TypeError`... */
export function errorClassName(error: unknown): string {
  if (error instanceof Error) return error.name || error.constructor.name;
  return error === null ? 'null' : typeof error;
}

export function errorCodeOf(error: unknown): string | undefined {
  if (error instanceof SluiceError) return error.code;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
}

function errorMessageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message;
}

/** What a dead letter is made from: the record as read. */
export type DeadLetterSource = Pick<KafkaRecord, 'topic' | 'partition' | 'offset' | 'key' | 'value' | 'headers' | 'timestamp'>;

/**
 * Headers of a dead letter: the original headers (bytes untouched), then the
 * `sluice.*` headers describing this failure, and for a data-contract rule's
 * failure in a worker the `__rule.*` headers naming rule, mode, subject,
 * version and field (as the ingress's rule dead letters). Original failure
 * headers (a replayed dead letter that failed again) are dropped, so a stale
 * error code or rule never sits next to a newer message.
 */
export function deadLetterHeaders(source: DeadLetterSource, error: unknown, failedAt: Date, attempts?: number): RecordHeaders {
  const code = errorCodeOf(error);
  const headers: [string, Buffer | null][] = [];
  for (const [name, value] of source.headers) if (!DLQ_HEADER_NAMES.has(name)) headers.push([name, value]);
  const add = (name: string, value: string) => headers.push([name, Buffer.from(value, 'utf8')]);
  add(DLQ_HEADERS.errorClass, errorClassName(error));
  if (code !== undefined) add(DLQ_HEADERS.errorCode, code);
  add(DLQ_HEADERS.errorMessage, errorMessageOf(error));
  add(DLQ_HEADERS.originalTopic, source.topic);
  add(DLQ_HEADERS.originalPartition, String(source.partition));
  add(DLQ_HEADERS.originalOffset, String(source.offset));
  add(DLQ_HEADERS.originalTimestamp, String(source.timestamp));
  add(DLQ_HEADERS.failedAt, failedAt.toISOString());
  if (attempts !== undefined) add(DLQ_HEADERS.attempts, String(attempts));
  const violation = error instanceof RuleViolationError ? error.violations[0] : undefined;
  if (violation?.mode !== undefined) headers.push(...ruleHeaders({ ...violation, mode: violation.mode }, source.topic));
  return headers;
}

/** A dead letter for `topic`: the original key and value bytes, so it can be replayed as it was. */
export function deadLetterRecord(source: DeadLetterSource, topic: string, error: unknown, failedAt: Date, attempts?: number): OutgoingRecord {
  return { topic, key: source.key, value: source.value, headers: deadLetterHeaders(source, error, failedAt, attempts) };
}
