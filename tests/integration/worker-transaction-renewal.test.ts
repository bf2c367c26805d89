import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionAbortedError } from '../../core/errors.ts';
import { errorTrail, type GroupBatch, type GroupConsumer, type TransactionalOutput } from '../../kafka/index.ts';
import { createTestTopics, readTopics, seam, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * A TransactionalOutput that renews its producer keeps its transactional id
 * (KIP-447 fences zombies by it). The renewal is forced by a fenced epoch:
 * another producer initialises the same id (a zombie of the instance, e.g. an
 * earlier process with the same SLUICE_INSTANCE_ID) and opens a transaction.
 * The output's next commit is refused, it renews, and the renewed producer's
 * initialisation fences the zombie in turn: the zombie's transaction is aborted
 * and its commit refused. With a fresh id per renewal (the old behaviour) the
 * zombie's commit went through and its record was read.
 */
describe('TransactionalOutput renewal', () => {
  const kafka = seam('sluice-test-renewal');
  const input = uniqueName('renewal.in');
  const output = uniqueName('renewal.out');
  const groupId = uniqueName('sluice.renewal');
  const transactionalId = `${groupId}-instance-1`;
  const batches: GroupBatch[] = [];
  let consumer: GroupConsumer;
  const outputs: TransactionalOutput[] = [];

  beforeAll(async () => {
    await createTestTopics([
      { name: input, partitions: 1 },
      { name: output, partitions: 1 },
    ]);
    const producer = kafka.producer();
    await producer.send([0, 1].map((i) => ({ topic: input, partition: 0, key: null, value: Buffer.from(`in-${i}`) })));
    await producer.close();
    consumer = kafka.groupConsumer({ groupId, topics: [input], protocol: 'classic', sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000, concurrency: 1, fallback: 'earliest', stableOffsets: true });
    const received = new Promise<void>((resolve) =>
      consumer.start({
        batch: async (batch) => {
          batches.push(batch);
          if (batches.flatMap((b) => b.records).length >= 2) resolve();
        },
      }),
    );
    await received;
  });

  afterAll(async () => {
    await consumer?.close();
    await Promise.allSettled(outputs.map((o) => o.close()));
  });

  const record = (value: string) => ({ topic: output, partition: 0, key: null, value: Buffer.from(value) });
  /** The offset to commit once input record `index` is handled, with the membership it was fetched under. */
  const offsetAfter = (index: number) => {
    const { batch, offset } = batches.flatMap((b) => b.records.map((r) => ({ batch: b, offset: r.offset })))[index]!;
    return { topic: input, partition: 0, offset: offset + 1n, leaderEpoch: batch.leaderEpoch, generation: batch.generation };
  };

  it('keeps the transactional id, fences the previous holder and commits nothing twice', async () => {
    const renewing = kafka.transactionalOutput({ consumer, name: 'renewal-tx', transactionalId });
    outputs.push(renewing);
    await renewing.begin().commit([record('out-0')], [offsetAfter(0)]);

    // The zombie: the same id, initialised after the output's producer (whose epoch is now fenced), a transaction open.
    const zombie = kafka.transactionalOutput({ consumer, name: 'renewal-zombie', transactionalId });
    outputs.push(zombie);
    const zombieUnit = zombie.begin();
    await zombieUnit.send([record('zombie')]);

    const refused = renewing.begin();
    const failure = await refused.commit([record('out-1')], [offsetAfter(1)]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    const reported = await refused.abort(failure);
    expect(reported).toBeInstanceOf(TransactionAbortedError);
    expect(renewing.renewals).toBe(1);
    expect(renewing.transactionalId).toBe(transactionalId);

    // The worker tries the same input again: the renewed producer initialises the same id, aborting the zombie's transaction.
    await renewing.begin().commit([record('out-1')], [offsetAfter(1)]);
    expect(renewing.renewals).toBe(1);

    const zombieCommit = await zombieUnit.commit([], []).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(zombieCommit, 'the zombie committed after the renewal').toBeDefined();
    expect(errorTrail(zombieCommit).join('\n')).toMatch(/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/);

    const read = await readTopics([output]);
    expect(read.map((r) => r.value?.toString())).toEqual(['out-0', 'out-1']);
    const committed = await withKafkaAdmin((admin) => admin.committedOffsets(groupId, [input], { requireStable: true }));
    expect(committed.map(({ partition, offset }) => ({ partition, offset }))).toEqual([{ partition: 0, offset: 2n }]);
  });
});
