import {
  ConnectionPool,
  findErrorBy,
  kGetApi,
  kGetConnection,
  kMetadata,
  kPerformWithRetry,
  Producer,
  type BaseOptions,
  type Broker,
  type ProducerOptions,
  type Callback,
  type Connection,
  type txnOffsetCommitV4,
} from '@platformatic/kafka';
import { TransactionAbortedError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { transactionalIdentity } from './client-options.ts';
import { errorTrail, isCoordinatorUnreachable } from './errors.ts';
import { kNativeConsumer, type CommitOffset, type GroupConsumer, type GroupGeneration } from './group-consumer.ts';
import { OnePassProducer } from './produce-request.ts';
import { toClientMessage } from './record-codec.ts';
import type { OutgoingRecord } from './types.ts';

/**
 * How a worker's outputs and input offsets reach Kafka, one unit at a time
 * (a transaction, or a produce-and-commit):
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
 *   A transaction costs one AddOffsetsToTxn and one TxnOffsetCommit carrying
 *   every partition's offset, however many partitions it covers: the client's
 *   `addOffset` sends a TxnOffsetCommit (and a metadata lookup) per partition,
 *   one after the other, so the seam sends that request itself.
 * - `IdempotentOutput` (at least once): outputs produced by an idempotent
 *   producer with acks=all, and only once acknowledged are the offsets committed.
 */

export interface OutputOffset extends CommitOffset {
  /** The membership the records were fetched under. */
  generation: GroupGeneration;
}

/**
 * One unit of output: records produced in one or more sends, then committed
 * with the input offsets they came from; all or nothing with transactions.
 * Sends may overlap (the caller bounds how many are in flight); commit() is
 * called once every send has succeeded. After any failure the caller waits
 * for its calls in flight to settle, then calls abort() and makes no other.
 */
export interface OutputUnit {
  /** Produces `records` in the unit; more follow. */
  send(records: readonly OutgoingRecord[]): Promise<void>;
  /**
   * Produces the last `records` and commits the unit with `offsets` (next offset to read, per partition).
   * With `order` (outputs of unitsInFlight > 1): once the records and offsets are in, `order.prepared()` is
   * called (the next unit may begin), and the commit itself waits for `order.after`, the unit before's
   * commit; when that rejects, this unit fails too.
   */
  commit(records: readonly OutgoingRecord[], offsets: readonly OutputOffset[], order?: UnitOrder): Promise<void>;
  /** Gives the unit up after `error` (aborts its transaction); resolves with the error to report. */
  abort(error: unknown): Promise<Error>;
}

/** How a unit's commit follows the unit before it (see OutputUnit.commit). */
export interface UnitOrder {
  prepared(): void;
  after: Promise<void>;
}

export interface WorkerOutput {
  /** Sends of a unit that may be in flight at once. */
  readonly sendsInFlight: number;
  /**
   * Units that may be open at once (1 when absent): the next one begins once the one before is prepared
   * (its commit is all that is left), and commits after it (UnitOrder).
   */
  readonly unitsInFlight?: number;
  /** Opens a unit; at most unitsInFlight at a time. Nothing reaches Kafka before its first call. */
  begin(): OutputUnit;
  close(): Promise<void>;
}

/** True when `error` says the commit's generation is not the group's any more: the partitions moved, the work is someone else's. */
export function isFencedByGroup(error: unknown): boolean {
  const cause = error instanceof TransactionAbortedError ? (error.cause as Error) : (error as Error);
  return ['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID', 'REBALANCE_IN_PROGRESS', 'STALE_MEMBER_EPOCH', 'FENCED_MEMBER_EPOCH'].some((id) => findErrorBy(cause, 'apiId', id) !== null);
}

/** The body of one TxnOffsetCommit: the offsets of one membership, by topic. */
export interface TxnOffsetCommitBody {
  generation: GroupGeneration;
  topics: txnOffsetCommitV4.TxnOffsetCommitRequestTopic[];
}

/**
 * Offsets → TxnOffsetCommit bodies: one per membership (a transaction's
 * offsets normally share one, so one request), each topic once, each
 * partition once (the last offset given for it wins).
 */
export function txnOffsetCommitBodies(offsets: readonly OutputOffset[]): TxnOffsetCommitBody[] {
  const bodies = new Map<string, { generation: GroupGeneration; topics: Map<string, Map<number, txnOffsetCommitV4.TxnOffsetCommitRequestPartition>> }>();
  for (const { topic, partition, offset, leaderEpoch, generation } of offsets) {
    const key = `${generation.groupId}\u0000${generation.memberId}\u0000${generation.generationId}`;
    let body = bodies.get(key);
    if (!body) bodies.set(key, (body = { generation, topics: new Map() }));
    let partitions = body.topics.get(topic);
    if (!partitions) body.topics.set(topic, (partitions = new Map()));
    partitions.set(partition, { partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: leaderEpoch ?? -1, committedMetadata: null });
  }
  return [...bodies.values()].map(({ generation, topics }) => ({ generation, topics: [...topics].map(([name, partitions]) => ({ name, partitions: [...partitions.values()] })) }));
}

/** Whether sending `records` may add partitions to the transaction: one not in `added`, or one the client's partitioner picks. */
export function addsPartitions(records: readonly OutgoingRecord[], added: ReadonlySet<string>): boolean {
  return records.some((record) => record.partition === undefined || !added.has(`${record.topic}\u0000${record.partition}`));
}

type NativeProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

type NativeTransaction = Awaited<ReturnType<NativeProducer['beginTransaction']>>;

/**
 * The transactional producer, whose requests to a broker may be two in flight
 * on its connection: AddOffsetsToTxn with AddPartitionsToTxn, and Produce with
 * TxnOffsetCommit (see TransactionalOutput.begin()). The client allows an
 * idempotent producer one request in flight per connection, to keep its
 * Produce requests in order; a transaction here has one Produce in flight at
 * a time (sendsInFlight), so the second place never holds another Produce.
 */
class TransactionalProducer extends OnePassProducer<Buffer, Buffer, Buffer, Buffer> {
  readonly #connections: ConnectionPool;

  constructor(options: ProducerOptions<Buffer, Buffer, Buffer, Buffer>) {
    super(options);
    this.#connections = new ConnectionPool(options.clientId, { ...options, maxInflights: 2 });
  }

  override [kGetConnection](broker: Broker, callback: Callback<Connection>): void {
    this.#connections.get(broker, callback);
  }

  async closeAll(): Promise<void> {
    try {
      await this.close(true);
    } finally {
      await new Promise<void>((resolve) => this.#connections.close(() => resolve()));
    }
  }
}

export interface TransactionalOutputOptions {
  /** Built with core/retry.ts's `transaction` policy (CONCURRENT_TRANSACTIONS after a commit is retried in milliseconds). */
  client: BaseOptions;
  transactionalId: string;
  consumer: GroupConsumer;
  logger: Logger;
  /**
   * Transactional producers taken in turn, one transaction open on each (1 when absent): with 2, the
   * next transaction begins on the other producer while this one's EndTxn is in flight (unitsInFlight).
   */
  producers?: 1 | 2;
}

/** One of the output's transactional producers and its transactional id. */
interface Slot {
  readonly transactionalId: string;
  producer: TransactionalProducer;
}

export class TransactionalOutput implements WorkerOutput {
  readonly #options: TransactionalOutputOptions;
  readonly #slots: Slot[];
  #turn = 0;
  #renewals = 0;
  /**
   * One at a time: with two to four produce requests of one transaction in
   * flight (@platformatic/kafka 2.12, Kafka 4.4) the broker answered
   * TRANSACTION_ABORTABLE and nearly every transaction was aborted.
   */
  readonly sendsInFlight = 1;
  /**
   * With two producers, a transaction is prepared (records and offsets in) while the one before commits,
   * and commits after it: EndTxn of one and the next one's round trips overlap, and the next one's
   * producer finished its own previous transaction long before, so the coordinator, still writing the
   * markers of the one just committed, does not answer it CONCURRENT_TRANSACTIONS. Each producer still has
   * one transaction at a time, and a transaction commits only after the one before committed (Committer).
   */
  readonly unitsInFlight: number;

  constructor(options: TransactionalOutputOptions) {
    this.#options = options;
    // The second id extends the first, so a prefixed ACL on the instance's id covers both.
    this.#slots = Array.from({ length: options.producers ?? 1 }, (_, i) => {
      const transactionalId = i === 0 ? options.transactionalId : `${options.transactionalId}.${i}`;
      return { transactionalId, producer: this.#create(transactionalId) };
    });
    this.unitsInFlight = this.#slots.length;
  }

  /**
   * The instance's (first) transactional id, the same for every producer it renews
   * (KIP-447 fences zombies by it): a renewed producer initialises the id with
   * producer id and epoch -1 (transactionalIdentity), so the coordinator first
   * completes or aborts whatever the previous producer left open, then bumps the
   * epoch, and that producer (closed, or a zombie still sending) can never
   * commit again. Nothing is applied twice: a partition's next owner also
   * waits for an open transaction before reading its offset (require_stable).
   */
  get transactionalId(): string {
    return this.#options.transactionalId;
  }

  /** Producers this output started afresh after a failure (diagnostics and tests). */
  get renewals(): number {
    return this.#renewals;
  }

  #create(transactionalId: string): TransactionalProducer {
    return new TransactionalProducer({ ...this.#options.client, ...transactionalIdentity(transactionalId), idempotent: true });
  }

  /**
   * A transaction, begun at its first call: BeginTransaction (local), then
   * AddOffsetsToTxn and the first send's AddPartitionsToTxn at once. Both go
   * to the transaction coordinator on the producer's one connection to it, and
   * Kafka handles a connection's requests one after the other, so the second
   * finds the first's state change done: one round trip instead of two. Once
   * both are answered, Produce (to the partitions' leaders) and TxnOffsetCommit
   * (to the group coordinator) go side by side, and EndTxn last. Side by side,
   * not at once, where one broker gets both: it checks each with the
   * transaction coordinator (KIP-890), and a second check of one transactional
   * id while the first is pending fails the first (NOT_ENOUGH_REPLICAS or
   * COORDINATOR_LOAD_IN_PROGRESS, retried after 100 ms and more). On the
   * producer's one connection to that broker the two are handled one after
   * the other, without a round trip between them.
   *
   * Sends overlap, except one that may add partitions to the transaction: the
   * client de-duplicates concurrent AddPartitionsToTxn calls of a producer
   * (a second caller gets the first one's answer, for other partitions), so
   * such a send waits for those in flight and goes alone.
   */
  begin(): OutputUnit {
    const slot = this.#slots[this.#turn]!;
    this.#turn = (this.#turn + 1) % this.#slots.length;
    let transaction: NativeTransaction | undefined;
    let opened: Promise<NativeTransaction> | undefined;
    let offsetsAdded: Promise<void> = Promise.resolve();
    const open = () =>
      (opened ??= slot.producer.beginTransaction().then(
        (begun) => {
          transaction = begun;
          // Awaited by the offset commit; a failure fails the commit, which aborts the transaction.
          offsetsAdded = Promise.resolve(begun.addConsumer(this.#options.consumer[kNativeConsumer] as never));
          offsetsAdded.catch(() => undefined);
          return begun;
        },
        async (error: unknown) => {
          // Nothing to abort: the producer's state is unknown, it starts afresh.
          await this.#renew(slot);
          throw new TransactionAbortedError(slot.transactionalId, error);
        },
      ));
    const added = new Set<string>();
    const inFlight = new Set<Promise<unknown>>();
    // The transaction before failed: this one is aborted though nothing is wrong with its producer.
    let afterFailed = false;
    const send = async (records: readonly OutgoingRecord[], onAdded?: () => void) => {
      const begun = await open();
      const adding = addsPartitions(records, added);
      if (adding) await Promise.allSettled(inFlight);
      const sending = this.#send(slot.producer, begun, offsetsAdded, records, onAdded);
      inFlight.add(sending);
      try {
        await sending;
      } finally {
        inFlight.delete(sending);
      }
      if (adding) for (const record of records) if (record.partition !== undefined) added.add(`${record.topic}\u0000${record.partition}`);
    };
    return {
      send: (records) => send(records),
      commit: async (records, offsets, order) => {
        const begun = await open();
        // The offsets go once the records' partitions are added too (see above); at the latest when the send settles.
        let partitionsAdded!: () => void;
        const added = new Promise<void>((resolve) => (partitionsAdded = resolve));
        const sent = send(records, partitionsAdded).finally(partitionsAdded);
        const results = await Promise.allSettled([sent, this.#commitOffsets(slot.producer, begun, Promise.all([offsetsAdded, added]), offsets)]);
        for (const result of results) if (result.status === 'rejected') throw result.reason;
        if (order) {
          order.prepared();
          // Its offsets may follow the transaction before's on the same partitions: never committed without those.
          await order.after.catch((error: unknown) => {
            afterFailed = true;
            throw error;
          });
        }
        await begun.commit();
      },
      abort: async (error) => {
        if (error instanceof TransactionAbortedError) return error;
        await Promise.allSettled([...inFlight, offsetsAdded]);
        return this.#abort(slot, transaction, error, afterFailed);
      },
    };
  }

  /**
   * Produces `records` once their partitions and the group's offsets are both
   * in the transaction. A Produce whose partition leader checks the
   * transaction (KIP-890) while the coordinator is still writing an
   * AddOffsetsToTxn retried after CONCURRENT_TRANSACTIONS is refused
   * (NOT_ENOUGH_REPLICAS) and retried after the client's back-off of 100 ms
   * and more; so the partitions are added here, beside AddOffsetsToTxn, and
   * the records go once both are answered (in the usual case the two answers
   * come back together). Records without a partition get theirs from the
   * client's partitioner, which adds them in send(). `onAdded` is told when
   * the partitions are added (before the records go).
   */
  async #send(producer: TransactionalProducer, transaction: NativeTransaction, offsetsAdded: Promise<void>, records: readonly OutgoingRecord[], onAdded?: () => void): Promise<void> {
    if (records.length === 0) return;
    const messages = records.map((r) => toClientMessage(r));
    if (messages.every((m) => m.partition !== undefined)) {
      const metadata = await producer.metadata({ topics: [...new Set(messages.map((m) => m.topic))] });
      // The client's Transaction answers a call with nothing to add without a promise.
      const partitionsAdded = Promise.resolve(transaction.addPartitions(metadata, messages.map(({ topic, partition }) => ({ topic, partition })) as never));
      await Promise.all([partitionsAdded, offsetsAdded]);
      onAdded?.();
    } else await offsetsAdded;
    await transaction.send({ messages });
  }

  /** Every offset of the transaction in one TxnOffsetCommit per membership (one in practice), to the group coordinator, once `ready`. */
  async #commitOffsets(producer: TransactionalProducer, transaction: NativeTransaction, ready: Promise<unknown>, offsets: readonly OutputOffset[]): Promise<void> {
    await ready;
    for (const body of txnOffsetCommitBodies(offsets)) await this.#txnOffsetCommit(producer, transaction.id, body);
  }

  /**
   * One TxnOffsetCommit, retried by the client's policy (the transaction
   * policy). Sent to the coordinator of the group now, not the one the records
   * were fetched under (it may be a dead broker); a retry after the coordinator
   * moved or could not be reached looks it up again. A refusal by the group
   * (ILLEGAL_GENERATION...) or a fencing is not retried (the client marks them
   * so) and fails the transaction.
   */
  #txnOffsetCommit(producer: TransactionalProducer, transactionalId: string, { generation, topics }: TxnOffsetCommitBody): Promise<void> {
    const consumer = this.#options.consumer;
    const failed = (error: Error, callback: Callback<void>) => {
      if (isCoordinatorUnreachable(error)) consumer.coordinatorFailed();
      callback(error);
    };
    return new Promise((resolve, reject) => {
      producer[kPerformWithRetry]<void>(
        'txnOffsetCommit',
        (callback) => {
          consumer.offsetCoordinator().then(
            (node) => {
              producer[kMetadata]({}, (error, metadata) => {
                if (error) return failed(error, callback);
                const broker = metadata!.brokers.get(node);
                if (!broker) return failed(Object.assign(new Error(`group coordinator ${node} is not in the cluster metadata`), { code: 'PLT_KFK_NETWORK' }), callback);
                producer[kGetConnection](broker, (error, connection) => {
                  if (error) return failed(error, callback);
                  producer[kGetApi]<Parameters<typeof txnOffsetCommitV4.createRequest>, txnOffsetCommitV4.TxnOffsetCommitResponse>('TxnOffsetCommit', (error, api) => {
                    if (error) return failed(error, callback);
                    api!(connection!, transactionalId, generation.groupId, producer.producerId!, producer.producerEpoch!, generation.generationId, generation.memberId, null, topics, (error) => {
                      if (error) return failed(error, callback);
                      callback(null);
                    });
                  });
                });
              });
            },
            (error: Error) => failed(error, callback),
          );
        },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }

  /** After `error`: aborts `transaction` (see below) and returns the TransactionAbortedError to report. */
  async #abort(slot: Slot, transaction: NativeTransaction | undefined, error: unknown, producerSound = false): Promise<TransactionAbortedError> {
    const aborted =
      transaction !== undefined &&
      (await transaction.abort().then(
        () => true,
        (abortError: unknown) => {
          // Expected when fenced or disconnected: the coordinator aborts it at the timeout or on the next initialisation.
          this.#options.logger.debug({ err: abortError, transactionalId: slot.transactionalId }, 'aborting the failed transaction also failed');
          return false;
        },
      ));
    // The offsets go to the group coordinator and the rest to the transaction coordinator; either may have moved.
    if (isCoordinatorUnreachable(error)) this.#options.consumer.coordinatorFailed();
    this.#options.logger.warn({ transactionalId: slot.transactionalId, causes: errorTrail(error), aborted }, 'the transaction failed');
    const reported = new TransactionAbortedError(slot.transactionalId, error);
    // Only a transaction refused by the group (a rebalance) or given up after the one before failed,
    // and cleanly aborted, leaves the producer usable. Any other state is unknown (a timeout during commit, a broker gone): the producer
    // starts afresh, and initialising the id again completes or aborts what the coordinator
    // holds, so a retry can never apply it twice.
    if (!aborted || !(producerSound || isFencedByGroup(error))) await this.#renew(slot);
    return reported;
  }

  async #renew(slot: Slot): Promise<void> {
    const old = slot.producer;
    this.#renewals++;
    slot.producer = this.#create(slot.transactionalId);
    await old.closeAll().catch((error: unknown) => this.#options.logger.debug({ err: error }, 'closing the previous transactional producer failed'));
  }

  async close(): Promise<void> {
    await Promise.all(this.#slots.map((slot) => slot.producer.closeAll()));
  }
}

export interface IdempotentOutputOptions {
  client: BaseOptions;
  consumer: GroupConsumer;
}

export class IdempotentOutput implements WorkerOutput {
  readonly #producer: NativeProducer;
  readonly #consumer: GroupConsumer;
  /** An idempotent producer keeps the order of requests in flight (up to 5 per partition on the broker). */
  readonly sendsInFlight = 4;

  constructor(options: IdempotentOutputOptions) {
    this.#consumer = options.consumer;
    this.#producer = new OnePassProducer({ ...options.client, idempotent: true, acks: -1 });
  }

  /** The offsets are committed once every send of the unit is acknowledged (acks=all). */
  begin(): OutputUnit {
    const send = async (records: readonly OutgoingRecord[]) => {
      if (records.length > 0) await this.#producer.send({ messages: records.map((r) => toClientMessage(r)), acks: -1 });
    };
    return {
      send,
      commit: async (records, offsets) => {
        await send(records);
        await this.#consumer.commit(offsets);
      },
      // Nothing to undo: what was produced stays, and is produced again after the partitions are read again (at least once).
      abort: async (error) => (error instanceof Error ? error : new Error(String(error))),
    };
  }

  async close(): Promise<void> {
    await this.#producer.close(true);
  }
}
