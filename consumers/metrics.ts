import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of the workers in this process. One registry per process,
 * labelled by worker, so `--instances N` (N group members in one process) adds
 * up in the same series and one /metrics endpoint serves them all.
 */

export type ErrorKind = 'retryable' | 'fatal';

export interface WorkerMetrics {
  readonly registry: Registry;
  readonly eventsIn: Counter<'worker'>;
  readonly eventsOut: Counter<'worker'>;
  readonly errors: Counter<'worker' | 'class'>;
  readonly deadLetters: Counter<'worker'>;
  readonly retries: Counter<'worker'>;
  readonly transactions: Counter<'worker' | 'outcome'>;
  readonly handlerSeconds: Histogram<'worker'>;
  readonly lag: Gauge<'worker' | 'topic' | 'partition'>;
}

export function createWorkerMetrics(registry = new Registry()): WorkerMetrics {
  const registers = [registry];
  return {
    registry,
    eventsIn: new Counter({ name: 'sluice_worker_events_in_total', help: 'Input records handled and committed.', labelNames: ['worker'], registers }),
    eventsOut: new Counter({ name: 'sluice_worker_events_out_total', help: 'Output records committed.', labelNames: ['worker'], registers }),
    errors: new Counter({
      name: 'sluice_worker_errors_total',
      help: 'Failures handling a record, by class: retryable (retried) or fatal (dead-lettered).',
      labelNames: ['worker', 'class'],
      registers,
    }),
    deadLetters: new Counter({ name: 'sluice_worker_dead_letters_total', help: 'Records sent to the dead-letter topic.', labelNames: ['worker'], registers }),
    retries: new Counter({ name: 'sluice_worker_retries_total', help: 'Records retried after a retryable failure.', labelNames: ['worker'], registers }),
    transactions: new Counter({
      name: 'sluice_worker_transactions_total',
      help: 'Kafka transactions of exactly-once workers, by outcome (committed, aborted).',
      labelNames: ['worker', 'outcome'],
      registers,
    }),
    handlerSeconds: new Histogram({
      name: 'sluice_worker_handler_seconds',
      help: 'Time to decode, handle and encode one record.',
      labelNames: ['worker'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
      registers,
    }),
    lag: new Gauge({
      name: 'sluice_worker_consumer_lag',
      help: 'Records on an assigned input partition not yet committed by this process (high watermark - next offset).',
      labelNames: ['worker', 'topic', 'partition'],
      registers,
    }),
  };
}

let processMetrics: WorkerMetrics | undefined;

/** The process-wide worker metrics, created on first use. */
export function workerMetrics(): WorkerMetrics {
  processMetrics ??= createWorkerMetrics();
  return processMetrics;
}
