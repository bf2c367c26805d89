import { Partitioners, type Message } from 'kafkajs';
import { runBareProducer } from './bare-harness.ts';
import { rawKafka } from './common.ts';

/**
 * The ceiling for Node with kafkajs: a bare producer sending pre-encoded records
 * in large batches, with the ingress's guarantees (idempotent, acks=all, one send
 * in flight) and none of its work (no HTTP, parsing, validation or encoding).
 */
async function main(): Promise<void> {
  await runBareProducer<Message>(async (brokers, topic) => {
    const producer = rawKafka(brokers, 'bench-bare').producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return {
      message: (key, value) => ({ key, value }),
      send: (messages) => producer.send({ topic, acks: -1, messages }),
      close: () => producer.disconnect(),
    };
  }, 1);
}

if (import.meta.main) await main();
