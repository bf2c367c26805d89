import { findErrorBy, Producer, type BaseOptions } from '@platformatic/kafka';
import { TransactionAbortedError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { errorTrail, isCoordinatorUnreachable } from './errors.ts';
import { kNativeConsumer, type CommitOffset, type GroupConsumer, type GroupGeneration } from './group-consumer.ts';
import { toClientMessage } from './record-codec.ts';
import type { OutgoingRecord } from './types.ts';

/**
 * How a worker's outputs and input offsets reach Kafka, in one call per round:
 *
 * - `TransactionalOutput` (exactly once): ONE transactional producer for the
 *   whole worker instance, whatever the partition count. Outputs and offsets go
 *   in one transaction; each offset is committed with the group generation the
 *   records were fetched under (KIP-447 TxnOffsetCommit with generation and
 *   member id), so a member that lost its partitions in a rebalance (a zombie,
 *   e.g. frozen past its session timeout) has its commit refused by the group
 *   coordinator and its transaction aborted: nothing it produced is ever read
 *   by a read_committed reader. Before KIP-447 (kafkajs), fencing rested on the
 *   transactional id alone, which took one producer per input partition.
 * - `IdempotentOutput` (at least once): outputs produced by an idempotent
 *   producer with acks=all, and only once acknowledged are the offsets committed.
 */

export interface OutputOffset extends CommitOffset {
  /** The membership the records were fetched under. */
  generation: GroupGeneration;
}

export interface WorkerOutput {
  /** Produces `records` and commits `offsets` (next offset to read, per partition); all or nothing with transactions. */
  commit(records: readonly OutgoingRecord[], offsets: readonly OutputOffset[]): Promise<void>;
  close(): Promise<void>;
}

/** True when `error` says the commit's generation is not the group's any more: the partitions moved, the work is someone else's. */
export function isFencedByGroup(error: unknown): boolean {
  const cause = error instanceof TransactionAbortedError ? (error.cause as Error) : (error as Error);
  return ['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID', 'REBALANCE_IN_PROGRESS', 'STALE_MEMBER_EPOCH', 'FENCED_MEMBER_EPOCH'].some((id) => findErrorBy(cause, 'apiId', id) !== null);
}

export interface TransactionalOutputOptions {
  /** Built with core/retry.ts's `transaction` policy (CONCURRENT_TRANSACTIONS after a commit is retried in milliseconds). */
  client: BaseOptions;
  transactionalId: string;
  consumer: GroupConsumer;
  logger: Logger;
}

export class TransactionalOutput implements WorkerOutput {
  readonly #options: TransactionalOutputOptions;
  #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  #renewals = 0;

  constructor(options: TransactionalOutputOptions) {
    this.#options = options;
    this.#producer = this.#create();
  }

  /**
   * The id of the producer in use. A renewed producer takes a new one: the
   * client initialises an id with producer id 0 and epoch 0 (not -1, "none"),
   * which the coordinator refuses for an id it already knows. What the previous
   * id left open is completed or aborted by the coordinator (at its timeout at
   * the latest), and a partition's next owner waits for that before reading its
   * offset (require_stable), so nothing is applied twice.
   */
  get transactionalId(): string {
    return this.#renewals === 0 ? this.#options.transactionalId : `${this.#options.transactionalId}-${this.#renewals}`;
  }

  #create(): Producer<Buffer, Buffer, Buffer, Buffer> {
    return new Producer({ ...this.#options.client, transactionalId: this.transactionalId, idempotent: true });
  }

  /** Initialises the transactional id (fencing a previous instance with the same id) before the first round. */
  async init(): Promise<void> {
    await this.#producer.initIdempotentProducer({});
  }

  async commit(records: readonly OutgoingRecord[], offsets: readonly OutputOffset[]): Promise<void> {
    const transaction = await this.#producer.beginTransaction().catch(async (error: unknown) => {
      await this.#renew();
      throw new TransactionAbortedError(this.transactionalId, error);
    });
    try {
      if (records.length > 0) await transaction.send({ messages: records.map((r) => toClientMessage(r)) });
      if (offsets.length > 0) {
        await transaction.addConsumer(this.#options.consumer[kNativeConsumer] as never);
        // Sent to the coordinator of the group now, not the one the records were fetched under (it may be a dead broker).
        const coordinatorId = await this.#options.consumer.offsetCoordinator();
        // One at a time: the client de-duplicates concurrent offset commits of one producer.
        for (const { topic, partition, offset, generation } of offsets) {
          await transaction.addOffset({ topic, partition, offset: offset - 1n, metadata: { consumer: { ...generation, coordinatorId } } } as never);
        }
      }
      await transaction.commit();
    } catch (error) {
      const aborted = await transaction.abort().then(
        () => true,
        (abortError: unknown) => {
          // Expected when fenced or disconnected: the coordinator aborts it at the timeout or on the next initialisation.
          this.#options.logger.debug({ err: abortError, transactionalId: this.transactionalId }, 'aborting the failed transaction also failed');
          return false;
        },
      );
      // The offsets go to the group coordinator and the rest to the transaction coordinator; either may have moved.
      if (isCoordinatorUnreachable(error)) this.#options.consumer.coordinatorFailed();
      this.#options.logger.warn({ transactionalId: this.transactionalId, causes: errorTrail(error), aborted }, 'the transaction failed');
      // Only a transaction refused by the group (a rebalance) and cleanly aborted leaves the producer
      // usable. Any other state is unknown (a timeout during commit, a broker gone): the producer
      // starts afresh, and initialising the id again completes or aborts what the coordinator
      // holds, so a retry can never apply it twice.
      if (!aborted || !isFencedByGroup(error)) await this.#renew();
      throw new TransactionAbortedError(this.transactionalId, error);
    }
  }

  async #renew(): Promise<void> {
    const old = this.#producer;
    this.#renewals++;
    this.#producer = this.#create();
    await old.close(true).catch((error: unknown) => this.#options.logger.debug({ err: error }, 'closing the previous transactional producer failed'));
  }

  async close(): Promise<void> {
    await this.#producer.close(true);
  }
}

export interface IdempotentOutputOptions {
  client: BaseOptions;
  consumer: GroupConsumer;
}

export class IdempotentOutput implements WorkerOutput {
  readonly #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  readonly #consumer: GroupConsumer;

  constructor(options: IdempotentOutputOptions) {
    this.#consumer = options.consumer;
    this.#producer = new Producer({ ...options.client, idempotent: true, acks: -1 });
  }

  async commit(records: readonly OutgoingRecord[], offsets: readonly OutputOffset[]): Promise<void> {
    if (records.length > 0) await this.#producer.send({ messages: records.map((r) => toClientMessage(r)), acks: -1 });
    await this.#consumer.commit(offsets);
  }

  async close(): Promise<void> {
    await this.#producer.close(true);
  }
}
