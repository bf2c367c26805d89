import { readFileSync } from 'node:fs';
import type { Schema } from 'avsc';
import { createTypes } from '../../core/formats/avro-types.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { createEncoder, type EventEncoder } from '../../core/serde.ts';
import { subjectFor } from '../../topology/model.ts';
import { createKafka, type KafkaProducer, type KafkaRecord } from '../../kafka/index.ts';
import { randomOrder } from './orders.ts';
import { testConfig, testLogger } from './platform.ts';

/**
 * Exactly-once checks: streams framed OrderPlaced inputs and reads the outputs
 * back with an independent, read-committed consumer.
 */

export async function orderEncoder(registry: RegistryClient, inputTopic: string): Promise<EventEncoder> {
  const text = JSON.stringify(JSON.parse(readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8')) as Schema);
  const subject = subjectFor(inputTopic);
  return createEncoder(subject, await registry.register(subject, text), createTypes(JSON.parse(text) as Schema));
}

export function inputs(count: number, encoder: EventEncoder): { ids: string[]; records: { key: Buffer; value: Buffer }[] } {
  const orders = Array.from({ length: count }, () => randomOrder());
  return { ids: orders.map((o) => o.orderId), records: orders.map((o) => ({ key: Buffer.from(o.orderId), value: encoder.encode(o) })) };
}

/** Sends `records` in slices with a pause between, so that workers are mid-stream for a while. */
export async function stream(producer: KafkaProducer, topic: string, records: { key: Buffer; value: Buffer }[], slice = 500, pauseMs = 100): Promise<void> {
  for (let i = 0; i < records.length; i += slice) {
    await producer.send(records.slice(i, i + slice).map((r) => ({ topic, ...r })));
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

export interface OutputReader {
  readonly messages: KafkaRecord[];
  /** Resolves once at least `count` outputs were read, then waits `settleMs` more so a late duplicate would show. */
  waitFor(count: number, timeoutMs: number, settleMs?: number): Promise<KafkaRecord[]>;
  close(): Promise<void>;
}

/** Reads `topic` from the beginning, read_committed: aborted transactions' records are never seen. `brokers` default to the test broker's. */
export async function readOutputs(brokers: string[] | undefined, topic: string, groupId: string, logger?: Logger): Promise<OutputReader> {
  const config = testConfig({ logLevel: 'silent', ...(brokers ? { kafkaBrokers: brokers.join(',') } : {}) });
  const consumer = createKafka(config, logger ?? testLogger(config, 'eos-reader'), 'eos-reader').groupConsumer({
    groupId,
    topics: [topic],
    protocol: 'classic',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    maxWaitMs: 200,
    readCommitted: true,
    concurrency: 64,
    fallback: 'earliest',
    stableOffsets: false,
  });
  const messages: KafkaRecord[] = [];
  await consumer.start({
    batch: async (batch) => {
      for (const record of batch.records) messages.push(record);
    },
  });
  return {
    messages,
    async waitFor(count, timeoutMs, settleMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} outputs (have ${messages.length})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      return messages;
    },
    close: () => consumer.close(),
  };
}

/** Output keys (order ids): total, distinct, and inputs with no output. */
export function tally(messages: KafkaRecord[], ids: string[]): { total: number; distinct: number; missing: number } {
  const keys = new Set(messages.map((m) => m.key?.toString() ?? ''));
  return { total: messages.length, distinct: keys.size, missing: ids.filter((id) => !keys.has(id)).length };
}
