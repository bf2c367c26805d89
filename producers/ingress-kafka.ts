import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import { createKafka, type KafkaAdmin, type KafkaProducer, type OutgoingRecord, type ProducerSettings, type RecordMetadata } from '../kafka/index.ts';

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.floor(value)));

/**
 * The ingress's Kafka budget. A request waits at most produceTimeoutMs; the
 * client underneath gives up in about that time too (connect, request and
 * replica-ack timeouts and the retries of the `produce` policy all fit in it),
 * so a send to a dead or hung broker ends instead of holding its send slot and
 * every record queued behind it for minutes.
 */
export function ingressProducerSettings(produceTimeoutMs: number): ProducerSettings {
  return {
    name: 'ingress',
    retry: retryPolicies.produce(produceTimeoutMs),
    acks: 'all',
    idempotent: true,
    connectTimeoutMs: clamp(produceTimeoutMs / 4, 300, 3000),
    requestTimeoutMs: clamp(produceTimeoutMs / 2, 500, 30_000),
    ackTimeoutMs: clamp(produceTimeoutMs / 2, 500, 30_000),
    sendTimeoutMs: produceTimeoutMs,
  };
}

/**
 * The ingress's producer and admin. Nothing here is required at start: an
 * ingress whose broker is down still starts, answers 503 and reports "not
 * ready", and the client connects on the first send once the broker is back.
 */
export class KafkaConnection {
  readonly #producer: KafkaProducer;
  readonly #admin: KafkaAdmin;
  readonly #topics: string[];
  #closed = false;

  constructor(options: { producer: KafkaProducer; admin: KafkaAdmin; topics: string[] }) {
    this.#producer = options.producer;
    this.#admin = options.admin;
    this.#topics = options.topics;
  }

  static create(config: SluiceConfig, logger: Logger, topics: string[]): KafkaConnection {
    const kafka = createKafka(config, logger, 'ingress');
    const settings = ingressProducerSettings(config.produceTimeoutMs);
    return new KafkaConnection({
      producer: kafka.producer(settings),
      admin: kafka.admin({ retry: settings.retry }),
      topics,
    });
  }

  send(records: OutgoingRecord[]): Promise<RecordMetadata[]> {
    if (this.#closed) return Promise.reject(new BrokerUnavailableError('the ingress is closing'));
    return this.#producer.send(records);
  }

  /** Connects and loads the route topics' metadata, so the first request does not pay for it. */
  async warmUp(): Promise<void> {
    await this.#producer.connect(this.#topics);
  }

  /** Readiness: the cluster answers and every route topic exists. */
  async ready(): Promise<void> {
    await this.#admin.describeCluster();
    await this.#producer.partitionCounts(this.#topics);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#producer.close(), this.#admin.close()]);
  }
}
