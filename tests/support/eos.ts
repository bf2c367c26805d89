import { readFileSync } from 'node:fs';
import type { Schema } from 'avsc';
import { Kafka, logLevel, type Consumer, type KafkaMessage, type Producer } from 'kafkajs';
import { createTypes } from '../../core/avro.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { createEncoder, type EventEncoder } from '../../core/serde.ts';
import { subjectFor } from '../../topology/model.ts';
import { randomOrder } from './orders.ts';

/**
 * Exactly-once checks: streams framed OrderPlaced inputs and reads the outputs
 * back with an independent, read-committed kafkajs consumer.
 */

export async function orderEncoder(registry: RegistryClient, inputTopic: string): Promise<EventEncoder> {
  const text = JSON.stringify(JSON.parse(readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8')) as Schema);
  const subject = subjectFor(inputTopic);
  return createEncoder(subject, await registry.register(subject, text), createTypes(JSON.parse(text) as Schema));
}

export function inputs(count: number, encoder: EventEncoder): { ids: string[]; records: { key: string; value: Buffer }[] } {
  const orders = Array.from({ length: count }, () => randomOrder());
  return { ids: orders.map((o) => o.orderId), records: orders.map((o) => ({ key: o.orderId, value: encoder.encode(o) })) };
}

/** Sends `records` in slices with a pause between, so that workers are mid-stream for a while. */
export async function stream(producer: Producer, topic: string, records: { key: string; value: Buffer }[], slice = 500, pauseMs = 100): Promise<void> {
  for (let i = 0; i < records.length; i += slice) {
    await producer.send({ topic, messages: records.slice(i, i + slice), acks: -1 });
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

export interface OutputReader {
  readonly messages: KafkaMessage[];
  /** Resolves once at least `count` outputs were read, then waits `settleMs` more so a late duplicate would show. */
  waitFor(count: number, timeoutMs: number, settleMs?: number): Promise<KafkaMessage[]>;
  close(): Promise<void>;
}

export async function readOutputs(brokers: string[], topic: string, groupId: string): Promise<OutputReader> {
  const kafka = new Kafka({ clientId: 'eos-reader', brokers, logLevel: logLevel.NOTHING });
  // readUncommitted: false is read_committed: aborted transactions' records are never seen.
  const consumer: Consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachBatch: async ({ batch }) => void messages.push(...batch.messages) });
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
    close: () => consumer.disconnect(),
  };
}

/** Output keys (order ids): total, distinct, and inputs with no output. */
export function tally(messages: KafkaMessage[], ids: string[]): { total: number; distinct: number; missing: number } {
  const keys = new Set(messages.map((m) => m.key?.toString() ?? ''));
  return { total: messages.length, distinct: keys.size, missing: ids.filter((id) => !keys.has(id)).length };
}
