import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import { KafkaAdmin, type AdminSettings } from './admin.ts';
import { PartitionReader, type PartitionReaderSettings } from './partition-reader.ts';
import { KafkaProducer, type ProducerSettings } from './producer.ts';

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
}

export function createKafka(config: SluiceConfig, logger: Logger, name: string): Kafka {
  return new Kafka(config, logger, name);
}

export type { AdminSettings, ClusterDescription, ConfigEntry, GroupDescription, GroupSummary, OffsetSpec, PartitionWatermarks, TopicDescription, TopicSpec } from './admin.ts';
export { KafkaAdmin } from './admin.ts';
export { PartitionReader, type BatchHandler, type PartitionReaderSettings } from './partition-reader.ts';
export { KafkaProducer, type ProducerSettings } from './producer.ts';
export { errorTrail } from './errors.ts';
export { partitionForKey } from './partitioner.ts';
export * from './types.ts';
