import { Producer, type MessageToProduce } from '@platformatic/kafka';
import type { SluiceConfig } from '../core/config.ts';
import { TransactionAbortedError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { retryPolicies } from '../core/retry.ts';
import { clientOptions, errorContext, routeClientEvents, transactionalIdentity } from './connection.ts';
import { toSluiceError, type ErrorContext } from './errors.ts';
import { Placer, recordOffsets, toClientHeaders } from './producer.ts';
import type { OutgoingRecord, RecordMetadata } from './types.ts';

/**
 * A transactional producer for writes that must land together with a record
 * that depends on where they landed: `write(records, follow)` sends `records`,
 * learns their offsets from the produce responses (assigned before the commit),
 * sends the records `follow` builds from those offsets, and commits. A
 * read_committed reader sees all of them or none, also when the process dies
 * between the two sends or before the commit (the coordinator aborts an open
 * transaction at its timeout, or at once when the same transactional id is
 * initialised again). The ingress's Idempotency-Key writes the events and their
 * response this way.
 *
 * `follow` may also return 'abort' (after learning, say, that one of the
 * records must not be written after all): the transaction is aborted, none of
 * it becomes visible, and `write` resolves to 'aborted'.
 *
 * One transaction at a time per producer (Kafka's rule); callers batch.
 */

/** The records to add once the first ones' metadata is known, or 'abort'. */
export type FollowUp = OutgoingRecord[] | 'abort';

/** Where a committed write's records landed: the first ones, then those `follow` added. */
export interface AtomicWritten {
  records: RecordMetadata[];
  followed: RecordMetadata[];
}

export interface AtomicWriteOptions {
  /**
   * Topics `follow` will write to. Their partitions join the transaction with
   * the first records' in one AddPartitionsToTxn, so the second send does not
   * wait for a second one.
   */
  followTopics?: readonly string[];
}

export interface AtomicProducerSettings {
  name: string;
  /** Stable per process across restarts, so a restarted one fences (aborts) what its predecessor left open. */
  transactionalId: string;
}

type RawProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
type Transaction = Awaited<ReturnType<RawProducer['beginTransaction']>>;

export class AtomicProducer {
  readonly #config: SluiceConfig;
  readonly #logger: Logger;
  readonly #settings: AtomicProducerSettings;
  readonly #context: ErrorContext;
  readonly #placer = new Placer();
  #client: RawProducer;

  constructor(config: SluiceConfig, logger: Logger, settings: AtomicProducerSettings) {
    this.#config = config;
    this.#logger = logger;
    this.#settings = settings;
    this.#context = errorContext(config);
    this.#client = this.#create();
  }

  #create(): RawProducer {
    const client = new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...clientOptions(this.#config, { name: this.#settings.name, retry: retryPolicies.transaction }),
      idempotent: true,
      ...transactionalIdentity(this.#settings.transactionalId),
    });
    routeClientEvents(client, this.#logger);
    return client;
  }

  /** Registers the transactional id (aborting a transaction a previous holder left open). */
  async init(): Promise<void> {
    try {
      await this.#client.initIdempotentProducer({});
    } catch (error) {
      throw toSluiceError(error, { ...this.#context, operation: `initialise transactional id ${this.#settings.transactionalId}` });
    }
  }

  async #messages(records: readonly OutgoingRecord[]): Promise<{ messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[]; offsetsOf: (bases: Bases) => RecordMetadata[] }> {
    const topics = [...new Set(records.map((r) => r.topic))];
    const metadata = records.some((r) => r.partition === undefined) ? await this.#client.metadata({ topics }) : undefined;
    const placement = this.#placer.place(records, (topic) => metadata!.topics.get(topic)!.partitionsCount);
    const messages = records.map((r, i) => ({
      topic: r.topic,
      partition: placement.partitions[i]!,
      key: r.key ?? undefined,
      value: r.value ?? undefined,
      headers: toClientHeaders(r.headers),
      timestamp: r.timestamp,
    }));
    return { messages, offsetsOf: (bases) => recordOffsets(records, placement, bases) };
  }

  /** Writes `records` and then `follow(their metadata)` in one transaction; where both landed, or 'aborted' when `follow` said so. */
  async write(records: readonly OutgoingRecord[], follow: (metadata: RecordMetadata[]) => FollowUp | Promise<FollowUp>, options: AtomicWriteOptions = {}): Promise<AtomicWritten | 'aborted'> {
    if (this.#client.producerId === undefined) await this.init();
    const transaction = await this.#client.beginTransaction().catch(async (error: unknown) => {
      await this.#renew();
      throw new TransactionAbortedError(this.#settings.transactionalId, error);
    });
    let aborting = false;
    try {
      const first = await this.#messages(records);
      if (options.followTopics !== undefined && options.followTopics.length > 0) await this.#addPartitions(transaction, first.messages, options.followTopics);
      const sent = await transaction.send({ messages: first.messages });
      const metadata = first.offsetsOf(sent.offsets ?? []);
      const next = await follow(metadata);
      if (next === 'abort') {
        aborting = true;
        await transaction.abort();
        return 'aborted';
      }
      const second = await this.#messages(next);
      const followed = second.messages.length > 0 ? second.offsetsOf((await transaction.send({ messages: second.messages })).offsets ?? []) : [];
      await transaction.commit();
      return { records: metadata, followed };
    } catch (error) {
      const aborted =
        !aborting &&
        (await transaction.abort().then(
          () => true,
          () => false,
        ));
      // A producer whose transaction state is unknown starts afresh; initialising the id again settles what the coordinator holds.
      if (!aborted) await this.#renew();
      throw new TransactionAbortedError(this.#settings.transactionalId, toSluiceError(error, { ...this.#context, operation: `transaction of ${records.length} record(s)` }));
    }
  }

  /** Adds the first records' partitions and every partition of `followTopics` to the transaction at once. */
  async #addPartitions(transaction: Transaction, messages: readonly MessageToProduce<Buffer, Buffer, Buffer, Buffer>[], followTopics: readonly string[]): Promise<void> {
    const topics = [...new Set([...messages.map((m) => m.topic), ...followTopics])];
    const metadata = await this.#client.metadata({ topics });
    const partitions = [
      ...messages.map((m) => ({ topic: m.topic, partition: m.partition! })),
      ...followTopics.flatMap((topic) => Array.from({ length: metadata.topics.get(topic)!.partitionsCount }, (_, partition) => ({ topic, partition }))),
    ];
    // The client reads only topic and partition from these (and would normalise the partition in place: hence copies).
    await transaction.addPartitions(metadata, partitions as unknown as Parameters<Transaction['addPartitions']>[1]);
  }

  async #renew(): Promise<void> {
    const old = this.#client;
    this.#client = this.#create();
    await old.close(true).catch((error: unknown) => this.#logger.debug({ err: error }, 'closing the previous transactional producer failed'));
  }

  async close(): Promise<void> {
    await this.#client.close(true);
  }
}

type Bases = ReadonlyArray<{ topic: string; partition: number; offset: bigint }>;
