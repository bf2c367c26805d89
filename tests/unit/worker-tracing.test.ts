import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { startWorker } from '../../consumers/start-worker.ts';
import type { WorkerConsumer } from '../../consumers/worker-runtime.ts';
import { loadConfig } from '../../core/config.ts';
import { DecodeError, RegistryError, RetryableError, ValidationError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { startTracing, type Tracing } from '../../core/tracing.ts';
import { frame } from '../../core/wire-format.ts';
import type { GroupGeneration, GroupListener } from '../../kafka/group-consumer.ts';
import type { OutputOffset, OutputUnit, WorkerOutput } from '../../kafka/transaction.ts';
import type { KafkaRecord, OutgoingRecord, RecordHeaders } from '../../kafka/types.ts';
import type { Topology, ValueSchema, WorkerSpec } from '../../topology/model.ts';

/**
 * The worker's `handle` spans, driven through a fake seam (a group consumer
 * whose batch the test hands over, an output that keeps what is committed) and
 * a fake registry that reads every value as JSON: each record continues the
 * trace its headers carry, and its output or dead letter carries its handle
 * span's traceparent instead of the input's.
 */

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SEND_SPAN = '00f067aa0ba902b7';
const INPUT_TRACEPARENT = `00-${TRACE_ID}-${SEND_SPAN}-01`;

const config = loadConfig({}, { logLevel: 'silent', workerMaxAttempts: '3', workerRetryBaseMs: '1', workerRetryMaxMs: '1' });
const logger = createLogger(config, 'worker-tracing-test');

function schema(topic: string, name: string): ValueSchema {
  const parsed: ValueSchema['schema'] = { type: 'record', name, fields: [{ name: 'n', type: 'int' }] };
  return { file: `${name}.avsc`, subject: `${topic}-value`, schema: parsed, text: JSON.stringify(parsed) };
}

const spec: WorkerSpec = { name: 'tracer', input: 'in', output: 'out', deadLetter: 'in.dlq', groupId: 'g', handler: '(given)', delivery: 'exactly-once' };
const topology: Topology = {
  file: '(worker tracing test)',
  topics: [
    { name: 'in', partitions: 1, replicationFactor: 1, configs: {}, valueSchema: schema('in', 'In') },
    { name: 'out', partitions: 1, replicationFactor: 1, configs: {}, valueSchema: schema('out', 'Out') },
    { name: 'in.dlq', partitions: 1, replicationFactor: 1, configs: {} },
  ],
  routes: [],
  workers: [spec],
};

/** Registers everything as id 1, knows no subject version (so no data-contract rules run) and decodes every payload as JSON (the worker decodes before it handles). */
const registry = {
  register: async () => 1,
  request: async () => {
    throw RegistryError.schemaNotFound();
  },
  decoder: async () => ({ decode: (payload: Buffer) => JSON.parse(payload.toString('utf8')) as unknown }),
} as unknown as RegistryClient;

class FakeOutput implements WorkerOutput {
  readonly sendsInFlight = 2;
  readonly records: OutgoingRecord[] = [];
  begin(): OutputUnit {
    const sent: OutgoingRecord[] = [];
    return {
      send: async (records) => void sent.push(...records),
      commit: async (records, _offsets: readonly OutputOffset[]) => void this.records.push(...sent, ...records),
      abort: async (error) => error as Error,
    };
  }
  async close(): Promise<void> {}
}

class FakeConsumer implements WorkerConsumer {
  listener: GroupListener | undefined;
  readonly generation: GroupGeneration = { groupId: 'g', memberId: 'm', generationId: 1 };
  async start(listener: GroupListener): Promise<void> {
    this.listener = listener;
  }
  commitGeneration(): GroupGeneration {
    return this.generation;
  }
  rewind(): void {}
  async partitionCount(): Promise<number> {
    return 1;
  }
  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

const traced: RecordHeaders = [
  ['correlation-id', Buffer.from('corr-1')],
  ['traceparent', Buffer.from(INPUT_TRACEPARENT)],
  ['tracestate', Buffer.from('vendor=x1')],
];

function record(offset: number, value: Buffer): KafkaRecord {
  return { topic: 'in', partition: 0, offset: BigInt(offset), key: Buffer.from(`k${offset}`), value, headers: traced, timestamp: 0n };
}

/** n = 1 is emitted, n = 2 fails once (retryable) and is emitted, n = 3 is invalid (fatal); offset 3 cannot be decoded. */
const inputs = [record(0, frame(1, Buffer.from('{"n":1}'))), record(1, frame(1, Buffer.from('{"n":2}'))), record(2, frame(1, Buffer.from('{"n":3}'))), record(3, Buffer.from('not framed'))];

async function handle(): Promise<OutgoingRecord[]> {
  const failed = new Set<number>();
  const handler = (value: { n: number }) => {
    if (value.n === 2 && !failed.has(2)) {
      failed.add(2);
      throw new RetryableError('flaky dependency');
    }
    if (value.n === 3) throw new ValidationError([{ path: 'n', message: 'must not be 3' }]);
    return { n: value.n * 10 };
  };
  const consumer = new FakeConsumer();
  const output = new FakeOutput();
  const worker = await startWorker({ config, logger, spec, topology, registry, handler, metrics: createWorkerMetrics(), seam: { consumer, output } });
  await consumer.listener!.batch({ topic: 'in', partition: 0, records: inputs, generation: consumer.generation, tenure: 1, leaderEpoch: 0, highWatermark: 4n, lastStableOffset: 4n, nextOffset: 4n });
  await worker.stop();
  return output.records;
}

const header = (r: OutgoingRecord, name: string): string[] => (r.headers ?? []).filter(([n]) => n === name).map(([, v]) => v?.toString('utf8') ?? '');
const traceparentOf = (span: ReadableSpan) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;

let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.close();
  tracing = undefined;
});

describe('worker tracing (fake seam)', () => {
  it("handles each record in a span continuing its input's trace; outputs and dead letters carry that span, and a dead letter fails it", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing({ config, logger, exporter });
    const records = await handle();

    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['handle in', 'handle in', 'handle in', 'handle in']);
    const byOffset = new Map(spans.map((s) => [s.attributes['messaging.kafka.offset'], s]));
    for (const span of spans) {
      expect(span.kind).toBe(SpanKind.CONSUMER);
      expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(span.parentSpanContext?.spanId).toBe(SEND_SPAN);
      expect(span.attributes).toMatchObject({ 'messaging.system': 'kafka', 'messaging.destination.name': 'in', 'sluice.worker': 'tracer', 'messaging.destination.partition.id': '0' });
    }

    const [first, second, invalid, poison] = [0, 1, 2, 3].map((offset) => byOffset.get(offset)!);
    expect(first!.status.code).toBe(SpanStatusCode.UNSET);
    expect(second!.status.code).toBe(SpanStatusCode.UNSET);
    expect(second!.events.map((e) => e.name)).toEqual(['retry']);
    expect(invalid!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'n: must not be 3' });
    expect(invalid!.events.find((e) => e.name === 'exception')?.attributes?.['exception.type']).toBe('SLUICE_VALIDATION_FAILED');
    expect(poison!.status.code).toBe(SpanStatusCode.ERROR);

    const outputs = records.filter((r) => r.topic === 'out');
    const deadLetters = records.filter((r) => r.topic === 'in.dlq');
    expect(outputs.map((r) => header(r, 'traceparent'))).toEqual([[traceparentOf(first!)], [traceparentOf(second!)]]);
    expect(outputs.map((r) => header(r, 'tracestate'))).toEqual([['vendor=x1'], ['vendor=x1']]);
    // The dead letters keep the input's other headers, but their trace is the failed handle span's, not the input's.
    expect(deadLetters.map((r) => header(r, 'traceparent'))).toEqual([[traceparentOf(invalid!)], [traceparentOf(poison!)]]);
    expect(deadLetters.map((r) => header(r, 'correlation-id'))).toEqual([['corr-1'], ['corr-1']]);
    expect(deadLetters.map((r) => header(r, 'sluice.error.class'))).toEqual([['ValidationError'], [DecodeError.name]]);
  });

  it('tracing off: no spans, outputs carry no trace headers and dead letters keep the input headers as they were', async () => {
    const records = await handle();
    const outputs = records.filter((r) => r.topic === 'out');
    const deadLetters = records.filter((r) => r.topic === 'in.dlq');
    expect(outputs).toHaveLength(2);
    for (const output of outputs) expect(header(output, 'traceparent')).toEqual([]);
    for (const dead of deadLetters) expect(header(dead, 'traceparent')).toEqual([INPUT_TRACEPARENT]);
  });
});
