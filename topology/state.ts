import { SluiceError } from '../core/errors.ts';
import type { Kafka, KafkaAdmin } from '../kafka/index.ts';
import { internalReplication } from '../broker/replication.ts';

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

async function ensureStateTopic(admin: KafkaAdmin, topic: string): Promise<void> {
  const { brokers } = await admin.describeCluster();
  const { replicationFactor, configs } = internalReplication(brokers.length);
  await admin.createTopics([{ name: topic, partitions: 1, replicationFactor, configs: { 'cleanup.policy': 'compact', ...configs } }]);
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
export async function readAppliedState(kafka: Kafka, admin: KafkaAdmin, topic: string, name: string, timeoutMs = 15_000): Promise<AppliedState | undefined> {
  if (!(await admin.listTopics()).includes(topic)) return undefined;
  // No group and no commit: the state is re-read from the start every time.
  const reader = kafka.partitionReader({ readCommitted: false, maxWaitMs: 100 });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SluiceError('SLUICE_TOPOLOGY_STATE_TIMEOUT', `could not read ${topic} within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
    });
    const records = await Promise.race([reader.readToEnd([topic]), timeout]);
    let state: AppliedState | undefined;
    for (const record of records) if (record.key?.toString('utf8') === name) state = parseState(record.value, topic);
    return state;
  } finally {
    clearTimeout(timer);
    await reader.close();
  }
}

export async function writeAppliedState(kafka: Kafka, admin: KafkaAdmin, topic: string, name: string, topics: string[]): Promise<void> {
  await ensureStateTopic(admin, topic);
  const producer = kafka.producer();
  try {
    const state: AppliedState = { topics: [...topics].sort(), appliedAt: new Date().toISOString() };
    await producer.send([{ topic, partition: 0, key: Buffer.from(name), value: Buffer.from(JSON.stringify(state)) }]);
  } finally {
    await producer.close();
  }
}
