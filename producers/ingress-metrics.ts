import type { FastifyPluginCallback } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Admission } from './admission.ts';
import type { BatchingStats, BatchObserver } from './batching-producer.ts';

export type IngressMetrics = ReturnType<typeof createMetrics>;

/** The ingress's own families (the HTTP ones are core/http-metrics.ts's, in the same registry). */
export function createMetrics(stats: () => BatchingStats) {
  const registry = new Registry();
  const metrics = {
    registry,
    batches: new Counter({ name: 'sluice_ingress_produce_batches_total', help: 'Produce requests sent to Kafka.', registers: [registry] }),
    records: new Counter({ name: 'sluice_ingress_produced_records_total', help: 'Records acknowledged by Kafka.', registers: [registry] }),
    failures: new Counter({ name: 'sluice_ingress_produce_failures_total', help: 'Produce requests that failed.', registers: [registry] }),
    batchSize: new Histogram({
      name: 'sluice_ingress_batch_records',
      help: 'Records per produce request.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
      registers: [registry],
    }),
    sendSeconds: new Histogram({
      name: 'sluice_ingress_produce_seconds',
      help: 'Time from send to acknowledgement.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    rejected: new Counter({ name: 'sluice_ingress_rejected_requests_total', help: 'Requests answered with an error.', labelNames: ['code'], registers: [registry] }),
  };
  new Gauge({
    name: 'sluice_ingress_queued_records',
    help: 'Records waiting to be sent.',
    registers: [registry],
    collect() {
      this.set(stats().queued);
    },
  });
  return metrics;
}

/** Admission's state (producers/admission.ts), read at scrape time: why the ingress refuses when it does. */
export function admissionGauges(registry: Registry, admission: Pick<Admission, 'limit' | 'drainPerS' | 'lagMs' | 'cpuRatePerS' | 'refusedBy'>): void {
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge('sluice_ingress_admission_limit_records', 'Most records that may wait for a produce request to be admitted.', () => admission.limit);
  gauge('sluice_ingress_admission_drain_records_per_second', 'Records per second Kafka drains, as admission estimates it.', () => admission.drainPerS);
  gauge('sluice_ingress_admission_loop_delay_seconds', "The event loop's delay, smoothed, that admission takes off its budget.", () => admission.lagMs / 1000);
  gauge(
    'sluice_ingress_admission_cpu_gate_requests_per_second',
    'Produce requests per second the CPU gate admits while the event loop is saturated; +Inf while it is open.',
    () => admission.cpuRatePerS,
  );
  new Counter({
    name: 'sluice_ingress_admission_refused_total',
    help: 'Produce requests admission refused, by rule: limit (the records waiting), sojourn (the oldest waited past the budget), cpu_gate (the event loop saturated).',
    labelNames: ['rule'],
    registers: [registry],
    collect() {
      // Admission counts them (no metric call on its hot path); the counter takes its totals at scrape time.
      const { limit, sojourn, cpuGate } = admission.refusedBy;
      this.reset();
      this.inc({ rule: 'limit' }, limit);
      this.inc({ rule: 'sojourn' }, sojourn);
      this.inc({ rule: 'cpu_gate' }, cpuGate);
    },
  });
}

/** The batcher's sends, as the metrics count them. */
export function batchObserver(metrics: IngressMetrics): BatchObserver {
  return {
    batchSent(records, ms) {
      metrics.batches.inc();
      metrics.records.inc(records);
      metrics.batchSize.observe(records);
      metrics.sendSeconds.observe(ms / 1000);
    },
    batchFailed() {
      metrics.failures.inc();
    },
  };
}

/** GET /metrics: the ingress's registry in Prometheus' text format. */
export const metricsRoute: FastifyPluginCallback<{ registry: Registry }> = (app, { registry }, done) => {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  done();
};
