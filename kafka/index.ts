import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import { KafkaAdmin, type AdminSettings } from './admin.ts';
import { clientOptions, producerOptions } from './client-options.ts';
import { GroupConsumer, type GroupConsumerOptions } from './group-consumer.ts';
import { PartitionReader, type PartitionReaderSettings } from './partition-reader.ts';
import { KafkaProducer, type ProducerSettings } from './producer.ts';
import { IdempotentOutput, TransactionalOutput } from './transaction.ts';

/** A group consumer's settings; the connection and the logger come from the entry class. */
export interface GroupConsumerSettings extends Omit<GroupConsumerOptions, 'client' | 'logger'> {
  /** Suffix of the client id; the entry class's name when omitted. */
  name?: string;
}

/** A worker output's settings: the group consumer whose offsets it commits, and the suffix of its client id. */
export interface OutputSettings {
  consumer: GroupConsumer;
  name?: string;
}

/**
 * The seam's front door: everything outside kafka/ gets its Kafka clients here,
 * built from SluiceConfig (brokers, TLS, SASL, timeouts) with one retry policy
 * each, and speaks only the types of kafka/types.ts.
 */
export class Kafka {
  readonly #config: SluiceConfig;
  readonly #logger: Logger;
  readonly #name: string;

  constructor(config: SluiceConfig, logger: Logger, name: string) {
    this.#config = config;
    this.#logger = logger;
    this.#name = name;
  }

  get config(): SluiceConfig {
    return this.#config;
  }

  /** An idempotent acks=all producer unless `settings` say otherwise. */
  producer(settings: Partial<ProducerSettings> = {}): KafkaProducer {
    return new KafkaProducer(this.#config, this.#logger, { name: this.#name, retry: retryPolicies.admin, ...settings });
  }

  /** A group-less reader of given partitions from given offsets (read_committed unless told otherwise). */
  partitionReader(settings: Partial<PartitionReaderSettings> = {}): PartitionReader {
    return new PartitionReader(this.#config, this.#logger, { name: this.#name, ...settings });
  }

  admin(settings: Partial<AdminSettings> = {}): KafkaAdmin {
    return new KafkaAdmin(this.#config, this.#logger, { name: `${this.#name}-admin`, ...settings });
  }

  /** A consumer-group member handing over per-partition batches (workers, bridges); read_committed unless told otherwise. */
  groupConsumer({ name = this.#name, ...settings }: GroupConsumerSettings): GroupConsumer {
    return new GroupConsumer({ ...settings, client: clientOptions(this.#config, { name, retry: retryPolicies.reader }), logger: this.#logger });
  }

  /**
   * A worker's exactly-once output: one transactional producer, offsets committed in its transactions with the
   * consumer's group generation (KIP-447). `transactionalId` must be stable for one instance and distinct between instances.
   */
  transactionalOutput({ consumer, name = this.#name, transactionalId, producers }: OutputSettings & { transactionalId: string; producers?: 1 | 2 }): TransactionalOutput {
    return new TransactionalOutput({ client: producerOptions(this.#config, { name, retry: retryPolicies.transaction }), transactionalId, consumer, logger: this.#logger, producers });
  }

  /** A worker's at-least-once output: an idempotent acks=all producer, offsets committed once its sends are acknowledged. */
  idempotentOutput({ consumer, name = this.#name }: OutputSettings): IdempotentOutput {
    return new IdempotentOutput({ client: producerOptions(this.#config, { name, retry: retryPolicies.reader }), consumer });
  }

  /** Whether the cluster speaks the `consumer` group protocol (KIP-848, Kafka >= 4.0). */
  supportsConsumerProtocol(): Promise<boolean> {
    return GroupConsumer.supportsConsumerProtocol(clientOptions(this.#config, { name: this.#name, retry: retryPolicies.admin }));
  }
}

export function createKafka(config: SluiceConfig, logger: Logger, name: string): Kafka {
  return new Kafka(config, logger, name);
}

export type { AdminSettings, ClusterDescription, ConfigEntry, GroupDescription, GroupSummary, OffsetSpec, PartitionWatermarks, TopicDescription, TopicSpec } from './admin.ts';
export { KafkaAdmin } from './admin.ts';
export { PartitionReader, type BatchHandler, type FetchedBatchHandler, type PartitionReaderSettings } from './partition-reader.ts';
export { KafkaProducer, type ProducerSettings } from './producer.ts';
export { errorTrail } from './errors.ts';
export type { GroupBatch, GroupConsumer, GroupGeneration, GroupListener, GroupProtocol } from './group-consumer.ts';
export { partitionForKey } from './partitioner.ts';
export type { IdempotentOutput, OutputOffset, OutputUnit, TransactionalOutput, UnitOrder, WorkerOutput } from './transaction.ts';
export * from './types.ts';
