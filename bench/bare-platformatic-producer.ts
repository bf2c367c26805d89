import { compatibilityPartitioner, ProduceAcks, Producer, type MessageToProduce } from '@platformatic/kafka';
import { runBareProducer } from './bare-harness.ts';
import { argValue } from './common.ts';

/**
 * The new Node ceiling: a bare @platformatic/kafka producer, as a user would
 * write it, sending the same pre-encoded records in large batches with the
 * ingress's guarantees (idempotent, acks=all) and none of its work. Unlike
 * kafkajs it may keep several idempotent sends in flight: `--inflight` sends
 * (default 4) are kept outstanding.
 */
type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

async function main(): Promise<void> {
  const inflight = Number(argValue(process.argv, '--inflight') ?? '4');
  await runBareProducer<Message>(async (brokers, topic) => {
    const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
      clientId: 'bench-bare-platformatic',
      bootstrapBrokers: brokers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
    });
    return {
      message: (key, value) => ({ topic, key: Buffer.from(key), value }),
      send: (messages) => producer.send({ messages }),
      close: () => producer.close(),
    };
  }, inflight);
}

if (import.meta.main) await main();
