import {
  Admin,
  type ClusterMetadata,
  ConfigResourceTypes,
  ConfigSources,
  FetchIsolationLevels,
  FindCoordinatorKeyTypes,
  IncrementalAlterConfigOperationTypes,
  ListOffsetTimestamps,
} from '@platformatic/kafka';
import type { SluiceConfig } from '../core/config.ts';
import { pollUntil } from '../core/deadline.ts';
import { isRetryable, KafkaError, type SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retry, retryPolicies, type RetryPolicy } from '../core/retry.ts';
import { clientOptions, errorContext, routeClientEvents } from './client-options.ts';
import { toSluiceError, type ErrorContext } from './errors.ts';
import type { TopicPartitionOffset } from './types.ts';

/** The admin calls Sluice uses, and nothing else, in Sluice's types. */

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface PartitionDescription {
  partition: number;
  /** -1 while the partition has no leader. */
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface TopicDescription {
  name: string;
  partitions: PartitionDescription[];
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  /** Set on the topic itself (not inherited from the broker or the default). */
  isTopicLevel: boolean;
  isDefault: boolean;
  isSensitive: boolean;
}

export interface PartitionWatermarks {
  partition: number;
  /** First offset still on the log. */
  low: bigint;
  /** The next offset to be written (the high watermark). */
  high: bigint;
}

/** `earliest`, `latest`, or the first offset whose timestamp is at or after `timestamp` (epoch ms); a partition with none gets the latest. */
export type OffsetSpec = 'earliest' | 'latest' | { timestamp: bigint };

export interface GroupSummary {
  groupId: string;
  state: string;
  protocolType: string;
}

export interface GroupMemberDescription {
  memberId: string;
  clientId: string;
  host: string;
  /** Topic → partitions assigned to this member. */
  assignment: Record<string, number[]>;
}

export interface GroupDescription {
  groupId: string;
  state: string;
  protocol: string;
  members: GroupMemberDescription[];
}

export interface ClusterDescription {
  clusterId: string;
  controllerId: number;
  brokers: { nodeId: number; host: string; port: number }[];
}

export interface AdminSettings {
  name: string;
  retry?: RetryPolicy;
  /** Longest wait for every partition of new topics to have a leader. Default 60 s. */
  leaderWaitMs?: number;
}

const LEADER_POLL_MS = 100;

export class KafkaAdmin {
  readonly #client: Admin;
  readonly #context: ErrorContext;
  readonly #leaderWaitMs: number;

  constructor(config: SluiceConfig, logger: Logger, settings: AdminSettings) {
    this.#client = new Admin(clientOptions(config, { name: settings.name, retry: settings.retry ?? retryPolicies.admin }));
    routeClientEvents(this.#client, logger);
    this.#context = errorContext(config);
    this.#leaderWaitMs = settings.leaderWaitMs ?? 60_000;
  }

  async #call<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation });
    }
  }

  /** Topic names, internal topics (`__consumer_offsets`, ...) left out. */
  listTopics(): Promise<string[]> {
    return this.#call('list topics', () => this.#client.listTopics({ includeInternals: false }));
  }

  /** Partitions, leaders and replicas; every topic when `names` is omitted. Fails with SLUICE_KAFKA_UNKNOWN_TOPIC for a missing one. */
  async describeTopics(names?: readonly string[]): Promise<TopicDescription[]> {
    const topics = names ?? (await this.listTopics());
    if (topics.length === 0) return [];
    const metadata = await this.#metadata(topics);
    return topics.map((name) => {
      const t = metadata.topics.get(name);
      if (t === undefined) throw new KafkaError('SLUICE_KAFKA_UNKNOWN_TOPIC', `topic ${name} does not exist`, { statusCode: 404, kafkaCode: 'UNKNOWN_TOPIC_OR_PARTITION' });
      return {
        name,
        partitions: t.partitions.map((p, partition) => ({ partition, leader: p.leader, replicas: [...p.replicas], isr: [...p.isr] })),
      };
    });
  }

  /**
   * Fresh metadata of `topics`. The client retries a missing topic as if it were
   * about to appear (autocreation); Sluice never autocreates, so a missing topic
   * fails at once and only transient errors are retried.
   */
  #metadata(topics: readonly string[]): Promise<ClusterMetadata> {
    return retry(retryPolicies.admin, () => this.#call(`metadata of ${topics.join(', ')}`, () => this.#client.metadata({ topics: [...topics], forceUpdate: true, retries: 0 })), {
      retryable: (e) => isRetryable(e) && (e as SluiceError).code !== 'SLUICE_KAFKA_UNKNOWN_TOPIC',
    });
  }

  async partitionCount(topic: string): Promise<number> {
    const [described] = await this.describeTopics([topic]);
    return described!.partitions.length;
  }

  /**
   * Creates the topics that do not exist yet and returns the names it created.
   * It returns only once every partition of every created topic has a leader:
   * a broker creating 48 partitions answers CreateTopics before it has elected
   * them all, and a produce in between meets UNKNOWN_TOPIC_OR_PARTITION.
   */
  async createTopics(specs: readonly TopicSpec[]): Promise<string[]> {
    if (specs.length === 0) return [];
    const existing = new Set(await this.listTopics());
    const missing = specs.filter((s) => !existing.has(s.name));
    const created: string[] = [];
    for (const spec of missing) {
      try {
        await this.#client.createTopics({
          topics: [spec.name],
          partitions: spec.partitions,
          replicas: spec.replicationFactor ?? -1,
          configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        });
        created.push(spec.name);
      } catch (error) {
        const classified = toSluiceError(error, { ...this.#context, operation: `create topic ${spec.name}` });
        // Created by someone else between the listing and now: not ours to report.
        if (classified.code !== 'SLUICE_KAFKA_TOPIC_EXISTS') throw classified;
      }
    }
    await this.waitForLeaders(missing.filter((s) => created.includes(s.name)));
    return created;
  }

  /** Waits until each topic has `partitions` partitions, each with a leader. */
  async waitForLeaders(specs: readonly Pick<TopicSpec, 'name' | 'partitions'>[]): Promise<void> {
    if (specs.length === 0) return;
    const deadline = Date.now() + this.#leaderWaitMs;
    let pending = specs.map((s) => s.name);
    const leaderless = () => new KafkaError('SLUICE_BROKER_UNAVAILABLE', `topics ${pending.join(', ')} have partitions without a leader after ${this.#leaderWaitMs} ms`);
    try {
      await retry(
        retryPolicies.poll(LEADER_POLL_MS, this.#leaderWaitMs),
        async () => {
          const metadata = await this.#client.metadata({ topics: pending, forceUpdate: true, retries: 0 }).catch((error: unknown) => {
            throw toSluiceError(error, this.#context);
          });
          pending = pending.filter((name) => {
            const t = metadata.topics.get(name);
            const want = specs.find((s) => s.name === name)!.partitions;
            return t === undefined || t.partitions.length < want || t.partitions.some((p) => p === undefined || p.leader < 0);
          });
          if (pending.length > 0) throw leaderless();
        },
        { retryable: (error) => isRetryable(error) && Date.now() < deadline },
      );
    } catch (error) {
      // Out of time: say which topics are still leaderless, whatever the last poll ran into.
      throw isRetryable(error) ? leaderless() : error;
    }
  }

  async createPartitions(topic: string, count: number): Promise<void> {
    await this.#call(`add partitions to ${topic}`, () => this.#client.createPartitions({ topics: [{ name: topic, count }] }));
    await this.waitForLeaders([{ name: topic, partitions: count }]);
  }

  async deleteTopics(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.#call(`delete topics ${names.join(', ')}`, () => this.#client.deleteTopics({ topics: [...names] }));
  }

  async describeTopicConfigs(names: readonly string[]): Promise<Map<string, ConfigEntry[]>> {
    if (names.length === 0) return new Map();
    const described = await this.#call(`describe configs of ${names.join(', ')}`, () =>
      this.#client.describeConfigs({ resources: names.map((name) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: name })), includeSynonyms: false }),
    );
    return new Map(
      described.map((r) => [
        r.resourceName,
        r.configs.map((c) => ({
          name: c.name,
          value: c.value ?? null,
          isTopicLevel: c.configSource === ConfigSources.DYNAMIC_TOPIC_CONFIG,
          isDefault: c.configSource === ConfigSources.DEFAULT_CONFIG,
          isSensitive: c.isSensitive,
        })),
      ]),
    );
  }

  /** Sets topic-level configs; the others are left as they are (IncrementalAlterConfigs). */
  async alterTopicConfigs(topic: string, set: Record<string, string>): Promise<void> {
    await this.#call(`alter configs of ${topic}`, () =>
      this.#client.incrementalAlterConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: topic,
            configs: Object.entries(set).map(([name, value]) => ({ name, configOperation: IncrementalAlterConfigOperationTypes.SET, value })),
          },
        ],
      }),
    );
  }

  async #partitionsOf(topic: string): Promise<number[]> {
    const [described] = await this.describeTopics([topic]);
    return described!.partitions.map((p) => p.partition);
  }

  /**
   * Partition → offset at `spec`. `readCommitted`: the last stable offset instead of the high watermark.
   * `partitions`: only these, and no metadata request to learn them (for callers that ask often).
   */
  async listOffsets(topic: string, spec: OffsetSpec, options: { readCommitted?: boolean; partitions?: readonly number[] } = {}): Promise<Map<number, bigint>> {
    const partitions = options.partitions ?? (await this.#partitionsOf(topic));
    const timestamp = spec === 'earliest' ? ListOffsetTimestamps.EARLIEST : spec === 'latest' ? ListOffsetTimestamps.LATEST : spec.timestamp;
    const listed = await this.#call(`list offsets of ${topic}`, () =>
      this.#client.listOffsets({
        topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
        isolationLevel: options.readCommitted ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
      }),
    );
    const out = new Map<number, bigint>();
    for (const p of listed.find((t) => t.name === topic)?.partitions ?? []) out.set(p.partitionIndex, p.offset);
    if (typeof spec === 'object') {
      // No record at or after the time: Kafka answers -1; reading starts at the end.
      const missing = [...out].filter(([, offset]) => offset < 0n).map(([p]) => p);
      if (missing.length > 0) {
        const latest = await this.listOffsets(topic, 'latest', { partitions });
        for (const p of missing) out.set(p, latest.get(p)!);
      }
    }
    return out;
  }

  /**
   * Waits until a read_committed reader of `topic` reaches everything written to it before the call (every
   * partition's last stable offset at or past its high watermark of then): a transaction's markers are written after
   * its commit returns, so a reader right after a commit can still stop short of it. False if `timeoutMs` passes first.
   */
  async untilStable(topic: string, timeoutMs: number): Promise<boolean> {
    const partitions = await this.#partitionsOf(topic);
    const written = await this.listOffsets(topic, 'latest', { partitions });
    return pollUntil(
      async () => {
        const stable = await this.listOffsets(topic, 'latest', { partitions, readCommitted: true });
        return [...written].every(([partition, high]) => (stable.get(partition) ?? -1n) >= high);
      },
      Date.now() + timeoutMs,
      20,
    );
  }

  /** Low and high watermark of every partition, by partition. */
  async watermarks(topic: string): Promise<PartitionWatermarks[]> {
    const [low, high] = await Promise.all([this.listOffsets(topic, 'earliest'), this.listOffsets(topic, 'latest')]);
    return [...high.keys()].sort((a, b) => a - b).map((partition) => ({ partition, low: low.get(partition) ?? 0n, high: high.get(partition)! }));
  }

  /**
   * Bytes `topic`'s partitions take in the brokers' log directories (DescribeLogDirs: every replica on every broker,
   * so RF times one copy): how much a compression codec saves, seen from the broker, with or without its disk at hand.
   */
  async logBytes(topic: string): Promise<number> {
    const partitions = await this.#partitionsOf(topic);
    const brokers = await this.#call(`describe the log dirs of ${topic}`, () => this.#client.describeLogDirs({ topics: [{ name: topic, partitions }] }));
    let bytes = 0;
    for (const broker of brokers) for (const dir of broker.results) for (const t of dir.topics) if (t.name === topic) for (const p of t.partitions) bytes += Number(p.partitionSize);
    return bytes;
  }

  async listGroups(): Promise<GroupSummary[]> {
    const groups = await this.#call('list groups', () => this.#client.listGroups({ types: ['classic', 'consumer'] }));
    return [...groups.values()].map((g) => ({ groupId: g.id, state: normalizeState(g.state), protocolType: g.protocolType }));
  }

  async describeGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    if (groupIds.length === 0) return [];
    const described = await this.#call(`describe groups ${groupIds.join(', ')}`, () => this.#client.describeGroups({ groups: [...groupIds] }));
    return groupIds.map((groupId) => {
      const g = described.get(groupId);
      return {
        groupId,
        state: normalizeState(g?.state ?? 'Dead'),
        protocol: g?.protocol ?? '',
        members: [...(g?.members.values() ?? [])].map((m) => ({
          memberId: m.id,
          clientId: m.clientId,
          host: m.clientHost,
          assignment: Object.fromEntries([...(m.assignments?.values() ?? [])].map((a) => [a.topic, [...a.partitions]])),
        })),
      };
    });
  }

  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    if (groupIds.length === 0) return;
    await this.#call(`delete groups ${groupIds.join(', ')}`, () => this.#client.deleteGroups({ groups: [...groupIds] }));
  }

  /**
   * The group's committed offsets (the next offset to read), for `topics` or
   * every topic it committed on. Partitions without a commit are left out.
   * `requireStable`: wait for pending transactional commits to settle.
   */
  async committedOffsets(groupId: string, topics?: readonly string[], options: { requireStable?: boolean } = {}): Promise<TopicPartitionOffset[]> {
    const request = topics === undefined ? groupId : { groupId, topics: await Promise.all(topics.map(async (name) => ({ name, partitionIndexes: await this.#partitionsOf(name) }))) };
    const [group] = await this.#call(`committed offsets of group ${groupId}`, () => this.#client.listConsumerGroupOffsets({ groups: [request], requireStable: options.requireStable ?? false }));
    const out: TopicPartitionOffset[] = [];
    for (const t of group?.topics ?? []) {
      for (const p of t.partitions) if (p.committedOffset >= 0n) out.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset });
    }
    return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  }

  /** Moves a group's committed offsets (the group must have no members). */
  async setGroupOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const byTopic = new Map<string, { partition: number; offset: bigint }[]>();
    for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), { partition: o.partition, offset: o.offset }]);
    await this.#call(`set offsets of group ${groupId}`, () =>
      this.#client.alterConsumerGroupOffsets({ groupId, topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets })) }),
    );
  }

  async describeCluster(): Promise<ClusterDescription> {
    const metadata = await this.#call('describe cluster', () => this.#client.metadata({ topics: [], forceUpdate: true }));
    return {
      clusterId: metadata.id,
      controllerId: metadata.controllerId,
      brokers: [...metadata.brokers].map(([nodeId, b]) => ({ nodeId, host: b.host, port: b.port })).sort((a, b) => a.nodeId - b.nodeId),
    };
  }

  /** The node coordinating a consumer group or a transactional id (FindCoordinator), e.g. to take it down on purpose in a fault test. */
  async coordinator(keyType: 'group' | 'transaction', key: string): Promise<number> {
    const [found] = await this.#call(`find the ${keyType} coordinator of ${key}`, () =>
      this.#client.findCoordinator({ keyType: keyType === 'group' ? FindCoordinatorKeyTypes.GROUP : FindCoordinatorKeyTypes.TRANSACTION, keys: [key] }),
    );
    if (found === undefined || found.nodeId < 0) throw new KafkaError('SLUICE_KAFKA_ERROR', `no ${keyType} coordinator for ${key}`, { retryable: true });
    return found.nodeId;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

/** Kafka 4 answers group states in upper snake case (STABLE); older brokers and the console use Stable. */
function normalizeState(state: string): string {
  if (!/^[A-Z_]+$/.test(state)) return state;
  return state
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}
