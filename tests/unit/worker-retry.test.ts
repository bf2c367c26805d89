import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { RecordProcessor } from '../../consumers/record-processor.ts';
import { RetryableError } from '../../core/errors.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { retryPolicies } from '../../core/retry.ts';
import type { EventEncoder } from '../../core/serde.ts';
import { frame } from '../../core/wire-format.ts';
import type { KafkaRecord } from '../../kafka/types.ts';

/** Every payload read as JSON under schema id 1. */
const registry = { decoder: async () => ({ decode: (payload: Buffer) => JSON.parse(payload.toString('utf8')) as unknown }) } as unknown as RegistryClient;
const encoder = { subject: 'out-value', schemaId: 1, encode: (value: unknown) => frame(1, Buffer.from(JSON.stringify(value))) } as unknown as EventEncoder;
const input: KafkaRecord = { topic: 'in', partition: 0, offset: 7n, key: Buffer.from('k'), value: frame(1, Buffer.from('{"n":1}')), headers: [], timestamp: 0n };

function processor(handler: () => Promise<unknown>, policy = retryPolicies.handler({ maxAttempts: 3, baseMs: 0, maxMs: 0 })) {
  const counted = { retries: 0 };
  const recordProcessor = new RecordProcessor({
    workerName: 'retry-test',
    output: 'out',
    deadLetter: 'in.dlq',
    registry,
    reader: undefined,
    encoder,
    handler,
    retry: policy,
    chunkBytes: 1_000_000,
    outputPartition: () => 0,
    metrics: createWorkerMetrics(),
    log: pino({ level: 'silent' }),
    onRetry: () => counted.retries++,
  });
  return { recordProcessor, counted };
}

const attemptsHeader = (outcome: Awaited<ReturnType<RecordProcessor['process']>>) =>
  outcome?.kind === 'dead' ? outcome.record.headers?.find(([name]) => name === 'sluice.error.attempts')?.[1]?.toString() : undefined;

describe('handler retries', () => {
  it('gives a record workerMaxAttempts attempts, the wait doubling up to the maximum with full jitter', () => {
    const policy = retryPolicies.handler({ maxAttempts: 5, baseMs: 100, maxMs: 1000 });
    expect(policy.retries).toBe(4);
    expect([1, 2, 3, 4, 5, 10].map((attempt) => policy.ceilingMs(attempt))).toEqual([100, 200, 400, 800, 1000, 1000]);
    for (let i = 0; i < 200; i++) expect(policy.delayMs(2)).toBeLessThan(200);
  });

  it('retries a retryable failure in place and emits what the last attempt returned', async () => {
    let calls = 0;
    const { recordProcessor, counted } = processor(async () => {
      if (++calls < 3) throw new RetryableError('the dependency is down');
      return { n: 2 };
    });
    const outcome = await recordProcessor.process(input, new AbortController().signal);
    expect(outcome?.kind).toBe('emit');
    expect(calls).toBe(3);
    expect(counted.retries).toBe(2);
  });

  it('dead-letters after the policy’s attempts, and a programming error at the first', async () => {
    const failing = processor(async () => {
      throw new RetryableError('still down');
    });
    expect(attemptsHeader(await failing.recordProcessor.process(input, new AbortController().signal))).toBe('3');
    let calls = 0;
    const buggy = processor(async () => {
      calls++;
      return (undefined as unknown as { n: number }).n;
    });
    expect(attemptsHeader(await buggy.recordProcessor.process(input, new AbortController().signal))).toBe('1');
    expect(calls).toBe(1);
    expect(buggy.counted.retries).toBe(0);
  });

  it('gives up its backoff as soon as the partition is revoked or the worker stops', async () => {
    const ended = new AbortController();
    let calls = 0;
    // An hour's wait: only the abort lets the record's handling end within the test's timeout.
    const { recordProcessor } = processor(
      async () => {
        calls++;
        queueMicrotask(() => ended.abort());
        throw new RetryableError('down');
      },
      retryPolicies.handler({ maxAttempts: 5, baseMs: 3_600_000, maxMs: 3_600_000 }),
    );
    expect(await recordProcessor.process(input, ended.signal)).toBeUndefined();
    expect(calls).toBe(1);
  });
});
