import { describe, expect, it } from 'vitest';
import { BrokerUnavailableError, IdempotencyKeyReusedError } from '../../core/errors.ts';
import type { AtomicWriteOptions, AtomicWritten, FollowUp, OutgoingRecord, RecordMetadata } from '../../kafka/index.ts';
import { TransactionBatcher, type StoredResponse, type TransactionWriter, type WriteJob, type WriteOutcome } from '../../producers/idempotency.ts';

/** A transactional writer that assigns offsets in order, and records what each transaction did. */
class FakeWriter implements TransactionWriter {
  readonly transactions: { records: string[]; followed: string[]; outcome: 'committed' | 'aborted'; options: AtomicWriteOptions }[] = [];
  #offset = 0n;
  /** Holds the next transaction until released, so jobs can queue behind it. */
  gate: Promise<void> | undefined;
  failWith: Error | undefined;

  async init(): Promise<void> {}
  async close(): Promise<void> {}

  async write(records: readonly OutgoingRecord[], follow: (metadata: RecordMetadata[]) => Promise<FollowUp>, options: AtomicWriteOptions): Promise<AtomicWritten | 'aborted'> {
    await this.gate;
    if (this.failWith) throw this.failWith;
    const metadata = records.map((r) => ({ topic: r.topic, partition: 0, offset: this.#offset++ }));
    const next = await follow(metadata);
    const names = (list: readonly OutgoingRecord[]) => list.map((r) => r.value!.toString());
    if (next === 'abort') {
      this.transactions.push({ records: names(records), followed: [], outcome: 'aborted', options });
      return 'aborted';
    }
    const followed = next.map((r) => ({ topic: r.topic, partition: 0, offset: this.#offset++ }));
    this.transactions.push({ records: names(records), followed: names(next), outcome: 'committed', options });
    return { records: metadata, followed };
  }
}

const record = (topic: string, value: string): OutgoingRecord => ({ topic, value: Buffer.from(value) });

/** A keyed request of `events`, answered from `store` once the barrier passed. */
function job(name: string, events: number, store: Map<string, StoredResponse | Error> = new Map()): WriteJob {
  return {
    records: Array.from({ length: events }, (_, i) => record('orders', `${name}.${i}`)),
    stored: async () => {
      const found = store.get(name);
      if (found instanceof Error) throw found;
      return found;
    },
    follow: () => [record('responses', `response of ${name}`)],
  };
}

const offsets = (outcome: WriteOutcome) => ('metadata' in outcome ? { events: outcome.metadata.map((m) => m.offset), responses: outcome.followed.map((m) => m.offset) } : outcome);

describe('TransactionBatcher', () => {
  it('sends what queued meanwhile in one transaction, and gives each request its own offsets', async () => {
    const writer = new FakeWriter();
    let release!: () => void;
    writer.gate = new Promise((resolve) => (release = resolve));
    let barriers = 0;
    const batcher = new TransactionBatcher([writer], 'responses', async () => void barriers++);
    const first = batcher.write(job('a', 1));
    const queued = [batcher.write(job('b', 2)), batcher.write(job('c', 1))];
    writer.gate = undefined;
    release();
    expect(offsets(await first)).toEqual({ events: [0n], responses: [1n] });
    expect((await Promise.all(queued)).map(offsets)).toEqual([
      { events: [2n, 3n], responses: [5n] },
      { events: [4n], responses: [6n] },
    ]);
    expect(writer.transactions.map((t) => t.records)).toEqual([['a.0'], ['b.0', 'b.1', 'c.0']]);
    expect(writer.transactions[1]!.followed).toEqual(['response of b', 'response of c']);
    // One barrier per transaction, and the responses' topic joins each transaction up front.
    expect(barriers).toBe(2);
    expect(writer.transactions[0]!.options.followTopics).toEqual(['responses']);
  });

  it('a key found known after the barrier aborts the transaction: that request gets the stored answer, the others are written in the next one', async () => {
    const writer = new FakeWriter();
    const store = new Map<string, StoredResponse | Error>();
    let release!: () => void;
    writer.gate = new Promise((resolve) => (release = resolve));
    const batcher = new TransactionBatcher([writer], 'responses', async () => {
      // What another replica committed before these requests arrived, read by this replica's barrier.
      store.set('b', { status: 200, body: { offset: '41' } });
    });
    const outcomes = [batcher.write(job('a', 1, store)), batcher.write(job('b', 1, store)), batcher.write(job('c', 1, store))];
    writer.gate = undefined;
    release();
    const [a, b, c] = await Promise.all(outcomes);
    expect(b).toEqual({ stored: { status: 200, body: { offset: '41' } } });
    expect('metadata' in a! && 'metadata' in c!).toBe(true);
    expect(writer.transactions.map((t) => [t.outcome, t.records])).toEqual([
      ['committed', ['a.0']],
      ['aborted', ['b.0', 'c.0']],
      ['committed', ['c.0']],
    ]);
  });

  it('a key used with another body fails that request with 422 and nothing of it is committed', async () => {
    const writer = new FakeWriter();
    const store = new Map<string, StoredResponse | Error>([['b', new IdempotencyKeyReusedError()]]);
    const batcher = new TransactionBatcher([writer], 'responses', async () => undefined);
    const outcomes = await Promise.allSettled([batcher.write(job('b', 1, store))]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { statusCode: 422 } });
    expect(writer.transactions.map((t) => t.outcome)).toEqual(['aborted']);
  });

  it('a barrier that fails (Kafka gone) fails the transaction’s requests with it, and commits nothing', async () => {
    const writer = new FakeWriter();
    const batcher = new TransactionBatcher([writer], 'responses', () => Promise.reject(new BrokerUnavailableError('no answer')));
    await expect(batcher.write(job('a', 1))).rejects.toMatchObject({ statusCode: 503 });
    expect(writer.transactions.map((t) => t.outcome)).toEqual(['aborted']);
  });

  it('a failed transaction is a 503 for every request in it, and the next one is written', async () => {
    const writer = new FakeWriter();
    writer.failWith = new Error('coordinator moved');
    const batcher = new TransactionBatcher([writer], 'responses', async () => undefined);
    await expect(batcher.write(job('a', 1))).rejects.toMatchObject({ statusCode: 503, code: 'SLUICE_BROKER_UNAVAILABLE' });
    writer.failWith = undefined;
    expect(offsets(await batcher.write(job('b', 1)))).toEqual({ events: [0n], responses: [1n] });
  });
});
