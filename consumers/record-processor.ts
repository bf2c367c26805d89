import type { AvroTypes } from '../core/formats/avro-types.ts';
import { isRetryable, OutputTooLargeError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { retry, type BackoffPolicy } from '../core/retry.ts';
import { decodeFramed, type EventEncoder } from '../core/serde.ts';
import { startKafkaRecordSpan, type RecordSpan } from '../core/tracing.ts';
import { unframe } from '../core/wire-format.ts';
import type { KafkaRecord, OutgoingRecord } from '../kafka/index.ts';
import { applyInputRules, type InputPlan, type WorkerContracts } from './contract-rules.ts';
import { normalizeOutputs, type Handler, type HandlerContext, type NormalizedOutput } from './handler.ts';
import { CORRELATION_HEADER, correlationIdOf, deadLetterRecord, errorClassName, errorCodeOf, headersToStrings, SOURCE_HEADER } from './headers.ts';
import type { WorkerMetrics } from './metrics.ts';

/**
 * One record through the worker: decode (to the worker's reader schema),
 * run the input's migration and READ rules, handle, retry in place, run the
 * output's WRITE rules, encode, or dead-letter. Knows nothing of Kafka
 * clients, chunks or commits.
 *
 * With tracing on, each record is handled inside a `handle <topic>` span that
 * continues the trace its headers carry, and its outputs and dead letter carry
 * that span's trace headers, so whoever reads them continues the same trace.
 */

/** `bytes`: what the records take in a produce request, counted against workerBatchBytes. */
export type Outcome = { kind: 'emit'; records: OutgoingRecord[]; bytes: number } | { kind: 'dead'; record: OutgoingRecord; bytes: number };

/** Per-record framing in a record batch (length, attributes, deltas, varints), rounded up. */
const RECORD_OVERHEAD_BYTES = 24;

/** An upper estimate of what `record` adds to a produce request. */
export function recordBytes(record: OutgoingRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  if (record.headers) for (const [name, value] of record.headers) bytes += RECORD_OVERHEAD_BYTES / 4 + name.length + (value?.length ?? 0);
  return bytes;
}

/**
 * The context handed to the handler. Its logger and header strings are built
 * on first use: most records never log, and a child logger per record is
 * measurable at high rates.
 */
class RecordContext implements HandlerContext {
  readonly #record: KafkaRecord;
  readonly #parent: Logger;
  readonly #headers: Record<string, string>;
  readonly correlationId: string;
  #log: Logger | undefined;

  constructor(parent: Logger, record: KafkaRecord, headers: Record<string, string>, correlationId: string) {
    this.#record = record;
    this.#parent = parent;
    this.#headers = headers;
    this.correlationId = correlationId;
  }

  get topic(): string {
    return this.#record.topic;
  }
  get partition(): number {
    return this.#record.partition;
  }
  get offset(): string {
    return String(this.#record.offset);
  }
  get key(): string | null {
    return this.#record.key === null ? null : this.#record.key.toString('utf8');
  }
  get timestamp(): number {
    return Number(this.#record.timestamp);
  }
  get headers(): Readonly<Record<string, string>> {
    return this.#headers;
  }
  get log(): Logger {
    this.#log ??= this.#parent.child({ topic: this.topic, partition: this.partition, offset: this.offset, key: this.key, correlationId: this.correlationId });
    return this.#log;
  }
}

export interface RecordProcessorOptions {
  workerName: string;
  output: string;
  deadLetter: string;
  registry: RegistryClient;
  /** The Avro reader schema records are resolved to without `contracts` (which know the reader); undefined for JSON Schema and Protobuf inputs (read as written). */
  reader: { types: AvroTypes; key: string } | undefined;
  encoder: EventEncoder;
  /** The input's and output's data contracts and the schema the input is read with (consumers/contract-rules.ts); without them, no rules run. */
  contracts?: Pick<WorkerContracts, 'plan' | 'reader' | 'write' | 'writes' | 'encoder'>;
  handler: Handler<unknown, unknown>;
  /** core/retry.ts's `handler` policy: attempts and backoff of a retryable handler failure. */
  retry: BackoffPolicy;
  /** Most output bytes per chunk: a record whose outputs alone exceed it is dead-lettered. */
  chunkBytes: number;
  /** Output partition of a key (Kafka's default partitioner, as the Java client). */
  outputPartition: (key: Buffer | null) => number;
  metrics: WorkerMetrics;
  log: Logger;
  /** Counted in the worker's counters. */
  onRetry: () => void;
}

const keyBytes = (key: Buffer | string | null): Buffer | null => (key === null ? null : typeof key === 'string' ? Buffer.from(key, 'utf8') : key);

export class RecordProcessor {
  readonly #o: RecordProcessorOptions;
  readonly #labels: { worker: string };
  readonly #spanAttributes: { 'sluice.worker': string };

  constructor(options: RecordProcessorOptions) {
    this.#o = options;
    this.#labels = { worker: options.workerName };
    this.#spanAttributes = { 'sluice.worker': options.workerName };
  }

  /**
   * Decodes and handles one record. A retryable handler failure is retried in
   * place (the partition waits, so its order is kept) by the `handler` retry
   * policy, then dead-lettered; a fatal one (or a programming error) is
   * dead-lettered at once. The registry being down is no fault of the record:
   * that error is thrown, and the partition is read again from its last commit.
   * Resolves undefined when `ended` is aborted (the worker stops, or the
   * partition is revoked) during a backoff.
   */
  process(record: KafkaRecord, ended: AbortSignal): Promise<Outcome | undefined> {
    // Its parent is the producer's `send` span the record's headers name (a new trace when they name none).
    const span = startKafkaRecordSpan('handle', record, this.#spanAttributes);
    // Not async on this path: no extra promise per record when tracing is off.
    if (span === undefined) return this.#process(record, ended, undefined);
    return processInSpan(span, this.#process(record, ended, span));
  }

  async #process(record: KafkaRecord, ended: AbortSignal, span: RecordSpan | undefined): Promise<Outcome | undefined> {
    const headers = headersToStrings(record.headers);
    const correlationId = correlationIdOf(headers, record);
    let value: unknown;
    let plan: InputPlan | undefined;
    const contracts = this.#o.contracts;
    // Taken in the same turn as the plan, which is made for this reader's version.
    const reader = contracts ? contracts.reader() : undefined;
    try {
      if (contracts) {
        const planned = contracts.plan(unframe(record.value).schemaId);
        plan = planned instanceof Promise ? await planned : planned;
      }
      // A record to migrate is read with its writer's own schema: the migration, not Avro resolution, makes it the reader's.
      ({ value } = await decodeFramed(this.#o.registry, record.value, plan && plan.steps.length > 0 ? undefined : reader ? reader.avro : this.#o.reader));
    } catch (error) {
      const retryable = isRetryable(error);
      this.#o.metrics.errors.inc({ ...this.#labels, class: retryable ? 'retryable' : 'fatal' });
      if (retryable) throw error;
      return this.deadLetter(record, correlationId, error, 1, span);
    }
    if (plan) {
      const verdict = await applyInputRules(plan, value, reader?.codec, reader?.avro?.types);
      if (!verdict.ok) {
        this.#o.metrics.errors.inc({ ...this.#labels, class: 'fatal' });
        return this.deadLetter(record, correlationId, verdict.error, 1, span);
      }
      value = verdict.value;
    }
    let attempts = 0;
    try {
      return await retry(
        this.#o.retry,
        async () => {
          attempts++;
          const startedAt = performance.now();
          let outcome: Outcome;
          try {
            const outputs = normalizeOutputs((await this.#o.handler(value, new RecordContext(this.#o.log, record, headers, correlationId))) as never, record.key);
            if (this.#o.contracts?.writes) {
              // A refused output is a RuleViolationError: not retryable, so the input is dead-lettered.
              const values = await this.#o.contracts.write(outputs.map((o) => o.value));
              outputs.forEach((o, i) => (o.value = values[i]));
            }
            outcome = this.#emit(record, outputs, correlationId, span);
          } catch (error) {
            this.#o.metrics.errors.inc({ ...this.#labels, class: isRetryable(error) ? 'retryable' : 'fatal' });
            throw error;
          }
          this.#o.metrics.handlerSeconds.observe(this.#labels, (performance.now() - startedAt) / 1000);
          // Producing it could only fail the same way on every re-delivery.
          if (outcome.bytes > this.#o.chunkBytes) return this.deadLetter(record, correlationId, new OutputTooLargeError(outcome.bytes, this.#o.chunkBytes), attempts, span);
          return outcome;
        },
        {
          signal: ended,
          onRetry: (error, attempt, delayMs) => {
            this.#o.onRetry();
            this.#o.metrics.retries.inc(this.#labels);
            span?.retrying(attempt, error);
            this.#o.log.warn(
              {
                topic: record.topic,
                partition: record.partition,
                offset: String(record.offset),
                correlationId,
                attempt,
                maxAttempts: this.#o.retry.retries + 1,
                delayMs,
                errorClass: errorClassName(error),
                err: error,
              },
              'retryable handler failure; retrying the record',
            );
          },
        },
      );
    } catch (error) {
      // Stopped or revoked: the record is left to whoever reads the partition next.
      if (ended.aborted) return undefined;
      return this.deadLetter(record, correlationId, error, attempts, span);
    }
  }

  /** The handler's outputs as records; they carry `span`'s trace headers, never any the handler copied from its input. */
  #emit(record: KafkaRecord, outputs: NormalizedOutput<Buffer | null>[], correlationId: string, span: RecordSpan | undefined): Outcome {
    const source = `${record.topic}/${record.partition}/${record.offset}`;
    const provenance: [string, Buffer][] = [
      [CORRELATION_HEADER, Buffer.from(correlationId, 'utf8')],
      [SOURCE_HEADER, Buffer.from(source, 'utf8')],
    ];
    let bytes = 0;
    const encoder = this.#o.contracts?.encoder() ?? this.#o.encoder;
    const records = outputs.map((output): OutgoingRecord => {
      const key = keyBytes(output.key);
      const headers: [string, Buffer][] = [];
      for (const name in output.headers) if (name !== CORRELATION_HEADER && name !== SOURCE_HEADER) headers.push([name, Buffer.from(output.headers[name]!, 'utf8')]);
      for (const header of provenance) headers.push(header);
      const out: OutgoingRecord = { topic: this.#o.output, partition: this.#o.outputPartition(key), key, value: encoder.encode(output.value), headers: span ? span.carry(headers) : headers };
      bytes += recordBytes(out);
      return out;
    });
    return { kind: 'emit', records, bytes };
  }

  /** A dead letter of `record`, logged and counted; `span` ends failed by `error`, and the dead letter carries it instead of the input's trace headers. */
  deadLetter(record: KafkaRecord, correlationId: string, error: unknown, attempts: number, span?: RecordSpan): Outcome {
    this.#o.metrics.deadLetters.inc(this.#labels);
    this.#o.log.warn(
      {
        topic: record.topic,
        partition: record.partition,
        offset: String(record.offset),
        key: record.key?.toString('utf8') ?? null,
        correlationId,
        errorClass: errorClassName(error),
        errorCode: errorCodeOf(error),
        attempts,
        err: error,
        deadLetter: this.#o.deadLetter,
      },
      'record dead-lettered',
    );
    const dead = deadLetterRecord(record, this.#o.deadLetter, error, new Date(), attempts);
    if (span) {
      dead.headers = span.carry(dead.headers!);
      span.fail(error);
    }
    return { kind: 'dead', record: dead, bytes: recordBytes(dead) };
  }
}

/** Ends `span` with the record's handling: a dead letter has already failed it, a thrown error fails it (the partition is read again, in a new span). */
async function processInSpan(span: RecordSpan, handling: Promise<Outcome | undefined>): Promise<Outcome | undefined> {
  try {
    const outcome = await handling;
    if (outcome?.kind !== 'dead') span.end();
    return outcome;
  } catch (error) {
    span.fail(error);
    throw error;
  }
}
