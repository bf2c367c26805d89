import type { Admin, ICustomPartitioner, Kafka, Producer, TopicMessages } from 'kafkajs';
import { TransactionAbortedError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/**
 * Exactly-once output for a worker: one transactional producer per input
 * partition, with transactional id `<groupId>-<topic>-<partition>`.
 *
 * Why per partition: kafkajs 2.2 has no KIP-447 (fencing by consumer-group
 * generation), so fencing rests on the transactional id alone. With an id per
 * input partition, whoever takes a partition over initialises the same id: the
 * broker bumps its epoch, aborts the previous owner's open transaction, and
 * refuses any later commit from the previous owner (a zombie). An id per
 * instance would not fence anything on a rebalance: the new owner has a
 * different id, so a stalled previous owner could still commit.
 *
 * Every offset of the group on such a partition is committed only inside these
 * transactions (sendOffsets), never by the consumer. After initialising its
 * producer, a new owner re-reads the committed offset, because the consumer read
 * it at assignment, possibly while the previous owner's last commit was still
 * being completed: initialisation waits for that commit to finish, so the offset
 * read afterwards is final, and records below it are skipped instead of being
 * processed twice.
 */

interface Slot {
  readonly transactionalId: string;
  readonly producer: Producer;
  /** False until the committed offset was re-read after initialisation or a rebalance. */
  verified: boolean;
}

export interface PartitionTransaction {
  readonly transactionalId: string;
  /** Set on the first use after initialisation or a rebalance: the group's committed offset to resume from. */
  readonly resumeFrom: bigint | undefined;
}

export interface TransactionsOptions {
  kafka: Kafka;
  admin: Admin;
  groupId: string;
  log: Logger;
  /** Longest a transaction may stay open before the broker aborts it (a crashed owner that no one replaces). */
  transactionTimeoutMs?: number;
  /** The producers' partitioner (kafkajs's default when omitted). */
  createPartitioner?: ICustomPartitioner;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class PartitionTransactions {
  readonly #options: TransactionsOptions;
  readonly #slots = new Map<string, Slot>();

  constructor(options: TransactionsOptions) {
    this.#options = options;
  }

  transactionalId(topic: string, partition: number): string {
    return `${this.#options.groupId}-${topic}-${partition}`;
  }

  /** Producer ready for a transaction on this partition, with the offset to resume from when it must re-check it. */
  async prepare(topic: string, partition: number): Promise<PartitionTransaction> {
    const slot = await this.#slot(topic, partition);
    if (slot.verified) return { transactionalId: slot.transactionalId, resumeFrom: undefined };
    const resumeFrom = await this.#committedOffset(topic, partition);
    slot.verified = true;
    return { transactionalId: slot.transactionalId, resumeFrom };
  }

  /**
   * Produces `topicMessages` and commits `nextOffset` for the group atomically.
   * On any failure the transaction is aborted and the producer dropped, so the
   * next attempt initialises afresh and re-reads the committed offset: a commit
   * whose outcome is unknown (a timeout) cannot then be applied twice.
   */
  async commit(topic: string, partition: number, topicMessages: TopicMessages[], nextOffset: bigint): Promise<void> {
    const slot = this.#slots.get(key(topic, partition));
    if (!slot) throw new TransactionAbortedError(this.transactionalId(topic, partition), new Error('no producer prepared for this partition'));
    const transaction = await slot.producer.transaction().catch(async (error: unknown) => {
      await this.#drop(topic, partition, slot);
      throw new TransactionAbortedError(slot.transactionalId, error);
    });
    try {
      if (topicMessages.length > 0) await transaction.sendBatch({ topicMessages, acks: -1 });
      await transaction.sendOffsets({
        consumerGroupId: this.#options.groupId,
        topics: [{ topic, partitions: [{ partition, offset: nextOffset.toString() }] }],
      });
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch((abortError: unknown) =>
        // Expected when fenced or disconnected; the broker aborts it on the next owner's initialisation or at the timeout.
        this.#options.log.warn({ err: abortError, transactionalId: slot.transactionalId }, 'aborting the failed transaction also failed'),
      );
      await this.#drop(topic, partition, slot);
      throw new TransactionAbortedError(slot.transactionalId, error);
    }
  }

  /** After a rebalance: partitions kept must re-check their offset; producers of partitions lost are closed. */
  async reassigned(assigned: ReadonlySet<string>): Promise<void> {
    const lost: Promise<void>[] = [];
    for (const [k, slot] of this.#slots) {
      slot.verified = false;
      if (!assigned.has(k)) {
        this.#slots.delete(k);
        lost.push(this.#disconnect(slot));
      }
    }
    await Promise.all(lost);
  }

  static assignmentKey = key;

  async close(): Promise<void> {
    const slots = [...this.#slots.values()];
    this.#slots.clear();
    await Promise.all(slots.map((slot) => this.#disconnect(slot)));
  }

  async #slot(topic: string, partition: number): Promise<Slot> {
    const existing = this.#slots.get(key(topic, partition));
    if (existing) return existing;
    const transactionalId = this.transactionalId(topic, partition);
    const producer = this.#options.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.#options.transactionTimeoutMs ?? 60_000,
      ...(this.#options.createPartitioner ? { createPartitioner: this.#options.createPartitioner } : {}),
      // Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS until its
      // markers are written (milliseconds): retry that soon, not after kafkajs's 100 ms default.
      retry: { initialRetryTime: 10, retries: 10, maxRetryTime: 5000 },
    });
    // connect() initialises the transactional id: this is where a previous owner is fenced.
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch((cause: unknown) => this.#options.log.warn({ err: cause, transactionalId }, 'disconnecting a producer that failed to start also failed'));
      throw error;
    }
    const slot: Slot = { transactionalId, producer, verified: false };
    this.#slots.set(key(topic, partition), slot);
    this.#options.log.debug({ transactionalId }, 'transactional producer initialised');
    return slot;
  }

  async #committedOffset(topic: string, partition: number): Promise<bigint | undefined> {
    const offsets = await this.#options.admin.fetchOffsets({ groupId: this.#options.groupId, topics: [topic] });
    const found = offsets.find((t) => t.topic === topic)?.partitions.find((p) => p.partition === partition);
    return found === undefined || BigInt(found.offset) < 0n ? undefined : BigInt(found.offset);
  }

  async #drop(topic: string, partition: number, slot: Slot): Promise<void> {
    if (this.#slots.get(key(topic, partition)) === slot) this.#slots.delete(key(topic, partition));
    await this.#disconnect(slot);
  }

  async #disconnect(slot: Slot): Promise<void> {
    await slot.producer.disconnect().catch((error: unknown) => this.#options.log.warn({ err: error, transactionalId: slot.transactionalId }, 'disconnecting a transactional producer failed'));
  }
}
