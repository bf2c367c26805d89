import type { FastifyPluginCallback } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
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
