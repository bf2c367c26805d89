import type { Admin, KafkaConfig, Producer, RetryOptions } from 'kafkajs';
import { BrokerUnavailableError, describeCause } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/**
 * The ingress's Kafka budget. A request waits at most produceTimeoutMs; the
 * clients underneath are configured to give up in about that time too, so a
 * send to a dead or hung broker ends instead of holding the one send slot
 * (and every queued record behind it) for kafkajs's default minutes of retries.
 */
export interface KafkaBudget {
  client: Pick<KafkaConfig, 'connectionTimeout' | 'requestTimeout' | 'retry'>;
  retry: RetryOptions;
  /** How long the broker may wait for replicas before answering a produce (acks=all). */
  ackTimeoutMs: number;
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.floor(value)));

export function kafkaBudget(produceTimeoutMs: number): KafkaBudget {
  const initialRetryTime = 100;
  const maxRetryTime = clamp(produceTimeoutMs / 4, 200, 5000);
  // Retries whose back-off adds up to about half the budget; attempts take the rest.
  let retries = 0;
  let waited = 0;
  let wait = initialRetryTime;
  while (waited + wait <= produceTimeoutMs / 2) {
    waited += wait;
    retries += 1;
    wait = Math.min(wait * 2, maxRetryTime);
  }
  const retry: RetryOptions = { initialRetryTime, maxRetryTime, retries: Math.max(1, retries) };
  return {
    client: {
      connectionTimeout: clamp(produceTimeoutMs / 4, 300, 3000),
      requestTimeout: clamp(produceTimeoutMs / 2, 500, 30_000),
      retry,
    },
    retry,
    ackTimeoutMs: clamp(produceTimeoutMs / 2, 500, 30_000),
  };
}

/**
 * Connections and topic metadata for the ingress. Nothing here is required at
 * start: an ingress whose broker is down still starts, answers 503 and reports
 * "not ready", and connects on the first send once the broker is back.
 */
export class KafkaConnection {
  readonly #producer: Producer;
  readonly #admin: Admin;
  readonly #topics: string[];
  readonly #log: Logger;
  readonly #partitions = new Map<string, number>();
  #producerConnecting: Promise<void> | undefined;
  #adminConnecting: Promise<void> | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: { producer: Producer; admin: Admin; topics: string[]; logger: Logger; refreshIntervalMs: number }) {
    this.#producer = options.producer;
    this.#admin = options.admin;
    this.#topics = options.topics;
    this.#log = options.logger;
    // Partition counts change rarely (only when an operator adds partitions), so a slow refresh is enough.
    this.#refreshTimer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.#log.warn({ err: error, topics: this.#topics }, 'topic metadata refresh failed'));
    }, options.refreshIntervalMs);
    this.#refreshTimer.unref();
  }

  producerConnected(): Promise<void> {
    if (this.#closed) return Promise.reject(new BrokerUnavailableError('the ingress is closing'));
    this.#producerConnecting ??= this.#producer.connect().catch((error: unknown) => {
      // Not cached: the next send tries again.
      this.#producerConnecting = undefined;
      throw new BrokerUnavailableError(`cannot connect to Kafka: ${describeCause(error)}`, error);
    });
    return this.#producerConnecting;
  }

  adminConnected(): Promise<void> {
    if (this.#closed) return Promise.reject(new BrokerUnavailableError('the ingress is closing'));
    this.#adminConnecting ??= this.#admin.connect().catch((error: unknown) => {
      this.#adminConnecting = undefined;
      throw new BrokerUnavailableError(`cannot connect to Kafka: ${describeCause(error)}`, error);
    });
    return this.#adminConnecting;
  }

  async partitionCount(topic: string): Promise<number> {
    let count = this.#partitions.get(topic);
    if (count === undefined) {
      await this.refresh();
      count = this.#partitions.get(topic);
    }
    if (count === undefined) throw new BrokerUnavailableError(`Kafka has no metadata for topic ${topic} (does it exist?)`);
    return count;
  }

  /** Fetches the partition counts of every route topic; concurrent callers share one fetch. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        await this.adminConnected();
        const { topics } = await this.#admin.fetchTopicMetadata({ topics: this.#topics });
        for (const t of topics) {
          const previous = this.#partitions.get(t.name);
          if (previous !== undefined && previous !== t.partitions.length) {
            this.#log.warn({ topic: t.name, from: previous, to: t.partitions.length }, 'partition count changed; keys now map to different partitions');
          }
          this.#partitions.set(t.name, t.partitions.length);
        }
      } catch (error) {
        throw error instanceof BrokerUnavailableError ? error : new BrokerUnavailableError(`cannot read topic metadata for ${this.#topics.join(', ')}: ${describeCause(error)}`, error);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  async describeCluster(): Promise<void> {
    await this.adminConnected();
    await this.#admin.describeCluster();
    for (const topic of this.#topics) await this.partitionCount(topic);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#refreshTimer);
    // A connect still under way must end before disconnect, or it would reconnect afterwards.
    await Promise.allSettled([this.#producerConnecting, this.#adminConnecting, this.#refreshing]);
    await Promise.all([this.#producer.disconnect(), this.#admin.disconnect()]);
  }
}
