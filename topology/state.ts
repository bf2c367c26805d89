import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { SluiceError } from '../core/errors.ts';
import { internalReplication } from './replication.ts';

/**
 * What the last `apply` of a topology left behind: the names of the topics it
 * manages. A cluster holds topics no topology owns (the registry's, consumer
 * offsets, other teams'), so "removed from the file" can only mean "in the last
 * applied state but no longer in the file". The state is one record per
 * topology name in a compacted topic, so it survives restarts and is shared by
 * every machine that runs `sluice topology plan`.
 */

export interface AppliedState {
  topics: string[];
  appliedAt: string;
}

async function ensureStateTopic(admin: Admin, topic: string): Promise<void> {
  if ((await admin.listTopics()).includes(topic)) return;
  const { brokers } = await admin.describeCluster();
  const { replicationFactor, configs } = internalReplication(brokers.length);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 1,
        replicationFactor,
        configEntries: Object.entries({ 'cleanup.policy': 'compact', ...configs }).map(([name, value]) => ({ name, value })),
      },
    ],
  });
}

function parseState(value: Buffer | null, topic: string): AppliedState | undefined {
  if (value === null) return undefined;
  const parsed = JSON.parse(value.toString('utf8')) as Partial<AppliedState>;
  if (!Array.isArray(parsed.topics) || !parsed.topics.every((t) => typeof t === 'string')) {
    throw new SluiceError('SLUICE_TOPOLOGY_STATE_INVALID', `a record in ${topic} has no list of topics: ${value.toString('utf8').slice(0, 200)}`);
  }
  return { topics: parsed.topics, appliedAt: String(parsed.appliedAt ?? '') };
}

/** The last applied state of topology `name`, or undefined if it was never applied. */
export async function readAppliedState(kafka: Kafka, admin: Admin, topic: string, name: string, timeoutMs = 15_000): Promise<AppliedState | undefined> {
  if (!(await admin.listTopics()).includes(topic)) return undefined;
  const high = Number((await admin.fetchTopicOffsets(topic))[0]?.high ?? 0);
  if (high === 0) return undefined;
  // A throwaway group that never commits: the state is re-read from the start every time.
  const consumer = kafka.consumer({ groupId: `sluice-topology-state-${randomUUID()}` });
  let state: AppliedState | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SluiceError('SLUICE_TOPOLOGY_STATE_TIMEOUT', `could not read ${topic} within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            if (message.key?.toString('utf8') === name) state = parseState(message.value, topic);
            if (Number(message.offset) >= high - 1) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        });
    });
  } finally {
    await consumer.disconnect();
  }
  return state;
}

export async function writeAppliedState(kafka: Kafka, admin: Admin, topic: string, name: string, topics: string[]): Promise<void> {
  await ensureStateTopic(admin, topic);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const state: AppliedState = { topics: [...topics].sort(), appliedAt: new Date().toISOString() };
    await producer.send({ topic, acks: -1, messages: [{ key: name, value: JSON.stringify(state) }] });
  } finally {
    await producer.disconnect();
  }
}
