import { describe, expect, it } from 'vitest';
import { Committer, roundTakesMore, type Chunk, type RoundLimits } from '../../consumers/committer.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import type { Outcome } from '../../consumers/record-processor.ts';
import { WorkerRuntime, type WorkerConsumer } from '../../consumers/worker-runtime.ts';
import { pollUntil } from '../../core/deadline.ts';
import { createLogger } from '../../core/logger.ts';
import type { GroupGeneration, GroupListener, GroupBatch } from '../../kafka/group-consumer.ts';
import type { OutputUnit, WorkerOutput } from '../../kafka/transaction.ts';
import type { KafkaRecord, TopicPartition } from '../../kafka/types.ts';

/**
 * Commit order and rebalances of the worker runtime, driven through a fake
 * seam: a group consumer whose batches the test hands over, and an output
 * that records each round (outputs + offsets) or fails it on demand.
 */

const log = createLogger({ logLevel: 'silent', logFormat: 'json', instanceId: 'test' } as never, 'worker-unit');

const generation = (generationId: number): GroupGeneration => ({ groupId: 'g', memberId: 'm', generationId });

/** Records each committed round (its outputs, across its sends, and its offsets); fails a round on demand. */
class FakeOutput implements WorkerOutput {
  readonly sendsInFlight = 2;
  readonly rounds: { records: string[]; offsets: { tp: string; offset: bigint; generationId: number }[]; sends: number }[] = [];
  failNext = 0;
  aborts = 0;
  closed = false;
  gate: Promise<void> | undefined;
  /** Called as each send (not the commit) goes out. */
  onSend: (() => void) | undefined;
  begin(): OutputUnit {
    const sent: string[] = [];
    let sends = 0;
    return {
      send: async (records) => {
        await this.gate;
        this.onSend?.();
        sends++;
        sent.push(...records.map((r) => r.value!.toString()));
      },
      commit: async (records, offsets) => {
        await this.gate;
        if (this.failNext > 0) {
          this.failNext--;
          throw new Error('transaction aborted: broker unavailable');
        }
        this.rounds.push({
          records: [...sent, ...records.map((r) => r.value!.toString())],
          offsets: offsets.map((o) => ({ tp: `${o.topic}/${o.partition}`, offset: o.offset, generationId: o.generation.generationId })),
          sends: sends + 1,
        });
      },
      abort: async (error) => {
        this.aborts++;
        return error as Error;
      },
    };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * An output with two units in flight (as the exactly-once output with two producers): each unit's
 * commit says it is prepared, waits for the unit before (UnitOrder), then for the test to answer its
 * EndTxn (committed or failed).
 */
class PipelinedOutput implements WorkerOutput {
  readonly sendsInFlight = 1;
  readonly unitsInFlight = 2;
  open = 0;
  maxOpen = 0;
  aborts = 0;
  readonly committed: string[][] = [];
  /** The EndTxn of each unit that reached it, in order: answer(true) commits, answer(false) fails it. */
  readonly endTxns: ((committed: boolean) => void)[] = [];
  begin(): OutputUnit {
    this.maxOpen = Math.max(this.maxOpen, ++this.open);
    const sent: string[] = [];
    return {
      send: async (records) => {
        sent.push(...records.map((r) => r.value!.toString()));
      },
      commit: async (records, _offsets, order) => {
        sent.push(...records.map((r) => r.value!.toString()));
        order!.prepared();
        await order!.after;
        const committed = await new Promise<boolean>((answer) => this.endTxns.push(answer));
        if (!committed) throw new Error('EndTxn failed');
        this.committed.push(sent);
        this.open--;
      },
      abort: async (error) => {
        this.aborts++;
        this.open--;
        return error as Error;
      },
    };
  }
  async close(): Promise<void> {}
}

class FakeConsumer implements WorkerConsumer {
  listener: GroupListener | undefined;
  current = generation(1);
  readonly rewinds: { partitions: TopicPartition[]; delayMs: number | undefined }[] = [];
  readonly events: string[] = [];
  /** Partitions this member holds, by their tenure. */
  readonly held = new Map<string, number>([0, 1, 2].map((p) => [`in/${p}`, 1]));
  async start(listener: GroupListener): Promise<void> {
    this.listener = listener;
  }
  commitGeneration(p: TopicPartition, tenure: number): GroupGeneration | undefined {
    return this.held.get(`${p.topic}/${p.partition}`) === tenure ? this.current : undefined;
  }
  /** A rebalance that takes `partition` away, into generation `generationId`. */
  revoke(partition: number, generationId: number): void {
    this.held.delete(`in/${partition}`);
    this.current = generation(generationId);
    this.listener!.revoked!([{ topic: 'in', partition }]);
  }
  rewind(partitions: readonly TopicPartition[], delayMs?: number): void {
    this.rewinds.push({ partitions: [...partitions], delayMs });
  }
  async partitionCount(): Promise<number> {
    return 3;
  }
  async stop(): Promise<void> {
    this.events.push('stop');
  }
  async close(): Promise<void> {
    this.events.push('close');
  }
}

function record(partition: number, offset: number): KafkaRecord {
  return { topic: 'in', partition, offset: BigInt(offset), key: null, value: Buffer.from(`${partition}:${offset}`), headers: [], timestamp: 0n };
}

function batch(partition: number, from: number, count: number, gen = generation(1)): GroupBatch {
  return {
    topic: 'in',
    partition,
    records: Array.from({ length: count }, (_, i) => record(partition, from + i)),
    generation: gen,
    tenure: 1,
    leaderEpoch: 0,
    nextOffset: BigInt(from + count),
    highWatermark: BigInt(from + count),
    lastStableOffset: BigInt(from + count),
  };
}

/** Emits one output per input, its value the input's `partition:offset`; `gate` holds a record until released. */
function processor(gates = new Map<string, Promise<void>>()) {
  return {
    async process(input: KafkaRecord): Promise<Outcome> {
      await gates.get(input.value!.toString());
      return { kind: 'emit', records: [{ topic: 'out', partition: 0, key: null, value: input.value }], bytes: 10 };
    },
  };
}

function runtime(consumer: FakeConsumer, output: FakeOutput, options: { chunkSize?: number; gates?: Map<string, Promise<void>> } = {}) {
  return new WorkerRuntime({
    name: 'w',
    seam: { consumer, output },
    processor: processor(options.gates),
    chunkSize: options.chunkSize ?? 2,
    chunkBytes: 1_000_000,
    round: { maxRecords: 1000, maxBytes: 1_000_000, maxMs: 60_000 },
    shutdownTimeoutMs: 5000,
    metrics: createWorkerMetrics(),
    log,
  });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
/** Resolves once `condition` holds; fails the test when it does not within 5 s. */
const until = async (condition: () => boolean) => expect(await pollUntil(condition, Date.now() + 5000, 2)).toBe(true);

describe('worker commits (fake seam)', () => {
  it('commits each partition in offset order, its offset the next record to read, with the generation it was fetched under', async () => {
    const consumer = new FakeConsumer();
    const output = new FakeOutput();
    const worker = runtime(consumer, output);
    await worker.start();
    await Promise.all([consumer.listener!.batch(batch(0, 10, 5)), consumer.listener!.batch(batch(1, 0, 3))]);
    await worker.stop();

    const perPartition = new Map<string, string[]>();
    for (const round of output.rounds) for (const value of round.records) perPartition.set(value.split(':')[0]!, [...(perPartition.get(value.split(':')[0]!) ?? []), value]);
    expect(perPartition.get('0')).toEqual(['0:10', '0:11', '0:12', '0:13', '0:14']);
    expect(perPartition.get('1')).toEqual(['1:0', '1:1', '1:2']);
    // Offsets only grow, and the last one committed per partition is past its last record.
    const last = new Map<string, bigint>();
    for (const round of output.rounds) {
      for (const { tp, offset, generationId } of round.offsets) {
        expect(offset).toBeGreaterThan(last.get(tp) ?? -1n);
        expect(generationId).toBe(1);
        last.set(tp, offset);
      }
    }
    expect(last).toEqual(
      new Map([
        ['in/0', 15n],
        ['in/1', 3n],
      ]),
    );
    expect(worker.counters).toMatchObject({ processed: 8, emitted: 8, deadLettered: 0 });
    // Commits finish before the member leaves the group, the output closes last.
    expect(consumer.events).toEqual(['stop', 'close']);
    expect(output.closed).toBe(true);
  });

  it('puts the chunks queued while a transaction commits into the next one (one round, many partitions)', async () => {
    const consumer = new FakeConsumer();
    const output = new FakeOutput();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const worker = runtime(consumer, output, { chunkSize: 1 });
    await worker.start();
    const batches = [0, 1, 2].map((p) => consumer.listener!.batch(batch(p, 0, 2)));
    await settle();
    open();
    await Promise.all(batches);
    await worker.stop();
    // The first round holds the first chunk; the chunks queued behind it (room for 4 records) go in the second.
    expect(output.rounds.length).toBeLessThanOrEqual(3);
    expect(output.rounds[1]!.offsets.map((o) => o.tp).sort()).toEqual(['in/0', 'in/1', 'in/2']);
    expect(worker.counters.processed).toBe(6);
  });

  it('on a failed commit, drops what was queued after it and reads the partitions again from their committed offsets', async () => {
    const consumer = new FakeConsumer();
    const output = new FakeOutput();
    output.failNext = 1;
    const worker = runtime(consumer, output);
    await worker.start();
    await consumer.listener!.batch(batch(0, 0, 4));
    await settle();
    expect(consumer.rewinds).toEqual([{ partitions: [{ topic: 'in', partition: 0 }], delayMs: 500 }]);
    expect(output.rounds).toEqual([]);
    expect(worker.counters.processed).toBe(0);
    // The partition comes back from its committed offset and commits this time.
    await consumer.listener!.batch(batch(0, 0, 4));
    await worker.stop();
    expect(output.rounds.flatMap((r) => r.records)).toEqual(['0:0', '0:1', '0:2', '0:3']);
  });

  it('never commits a chunk fetched under a generation that is over, and does not rewind for it (the rebalance re-reads it)', async () => {
    const consumer = new FakeConsumer();
    const output = new FakeOutput();
    let release!: () => void;
    const gates = new Map([['0:1', new Promise<void>((resolve) => (release = resolve))]]);
    const worker = runtime(consumer, output, { chunkSize: 1, gates });
    await worker.start();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const handling = consumer.listener!.batch(batch(0, 0, 3));
    await settle();
    // A rebalance: the partition is revoked, the member is in generation 2 now.
    consumer.revoke(0, 2);
    release();
    open();
    await handling;
    await worker.stop();
    // 0:0 was already in the transaction being committed when the generation changed... and is refused with it
    // by the broker in real life; here the fake output accepts it, but nothing handled after the revocation is submitted.
    expect(output.rounds.flatMap((r) => r.records)).not.toContain('0:2');
    expect(consumer.rewinds).toEqual([]);
  });
});

describe('worker commits across an assignment change that keeps the partition (consumer protocol)', () => {
  it('commits what was fetched before the member epoch moved, with the epoch now', async () => {
    const consumer = new FakeConsumer();
    const output = new FakeOutput();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const worker = runtime(consumer, output, { chunkSize: 10 });
    await worker.start();
    // Partition 2's chunk is being committed (epoch 1) while partition 0's waits for the next round.
    await consumer.listener!.batch(batch(2, 0, 1));
    await consumer.listener!.batch(batch(0, 0, 3));
    // Another member joined: partition 1 moved away, partition 0 stays; the member epoch is 6 now.
    consumer.revoke(1, 6);
    open();
    await worker.stop();
    expect(output.rounds.map((r) => r.offsets)).toEqual([[{ tp: 'in/2', offset: 1n, generationId: 1 }], [{ tp: 'in/0', offset: 3n, generationId: 6 }]]);
  });
});

describe('committer', () => {
  const unbounded: RoundLimits = { maxRecords: 1_000_000, maxBytes: 1_000_000_000, maxMs: 3_600_000 };
  const chunk = (partition: number, first: number, last: number, tenure = 1, read = 0): Chunk => ({
    topic: 'in',
    partition,
    firstOffset: BigInt(first),
    lastOffset: BigInt(last),
    count: last - first + 1,
    records: [{ topic: 'out', value: Buffer.from(`${partition}:${first}-${last}`) }],
    outputs: 1,
    deadLetters: 0,
    bytes: 100,
    tenure,
    read,
    leaderEpoch: 0,
    highWatermark: 0n,
  });

  it('rejects chunks of a partition no longer held since they were fetched, without committing them; commits the others with the membership now', async () => {
    const output = new FakeOutput();
    const committer = new Committer({ output, generationOf: (c) => (c.tenure === 2 ? generation(2) : undefined), requestBytes: 1000, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 100, log });
    const stale = committer.submit(chunk(0, 0, 4, 1));
    const fresh = committer.submit(chunk(1, 0, 4, 2));
    await expect(stale).rejects.toMatchObject({ stale: true });
    await fresh;
    expect(output.rounds.map((r) => r.offsets)).toEqual([[{ tp: 'in/1', offset: 5n, generationId: 2 }]]);
  });

  it('sends a round in parts of at most requestBytes (at least one chunk) while more is queued, and commits each partition at its last chunk', async () => {
    const output = new FakeOutput();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 250, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 100, log });
    const all = [chunk(0, 0, 1), chunk(0, 2, 3), chunk(1, 0, 0), chunk(0, 4, 9), chunk(1, 1, 1)].map((c) => committer.submit(c));
    open();
    await Promise.all(all);
    // The first chunk found the committer idle: committed at once, alone. The four queued behind it form one round of two sends.
    expect(output.rounds.map((r) => [r.sends, r.offsets])).toEqual([
      [1, [{ tp: 'in/0', offset: 2n, generationId: 1 }]],
      [
        2,
        [
          { tp: 'in/0', offset: 10n, generationId: 1 },
          { tp: 'in/1', offset: 2n, generationId: 1 },
        ],
      ],
    ]);
    expect(output.rounds[1]!.records).toEqual(['0:2-3', '1:0-0', '0:4-9', '1:1-1']);
  });

  it('commits a round once it holds maxRecords input records, leaving the rest to the next round', async () => {
    const output = new FakeOutput();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 100, sendsInFlight: 2, round: { ...unbounded, maxRecords: 4 }, maxQueuedRecords: 100, log });
    const all = [chunk(0, 0, 0), chunk(0, 1, 2), chunk(1, 0, 1), chunk(2, 0, 1), chunk(0, 3, 3)].map((c) => committer.submit(c));
    open();
    await Promise.all(all);
    expect(output.rounds.map((r) => r.records)).toEqual([['0:0-0'], ['0:1-2', '1:0-1'], ['2:0-1', '0:3-3']]);
  });

  it('commits a round that has been open maxMs although more is queued', async () => {
    const output = new FakeOutput();
    let clock = 0;
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const committer = new Committer({
      output,
      generationOf: () => generation(1),
      requestBytes: 100,
      sendsInFlight: 2,
      round: { ...unbounded, maxMs: 50 },
      maxQueuedRecords: 100,
      log,
      now: () => (clock += 30),
    });
    const all = [chunk(0, 0, 0), chunk(0, 1, 1), chunk(1, 0, 0), chunk(2, 0, 0), chunk(0, 2, 2)].map((c) => committer.submit(c));
    open();
    await Promise.all(all);
    // Each look at the clock moves it 30 ms: a round opens, takes a part (30 ms open), takes another (60 ms) and commits.
    expect(output.rounds.map((r) => r.records)).toEqual([['0:0-0'], ['0:1-1', '1:0-0'], ['2:0-0', '0:2-2']]);
  });

  it('commits a round that outlasted a change of member epoch with the epoch now, when the member still holds its partitions', async () => {
    const output = new FakeOutput();
    let current = generation(5);
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    output.onSend = () => (current = generation(6));
    const committer = new Committer({ output, generationOf: () => current, requestBytes: 100, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 100, log });
    const all = [chunk(0, 0, 0), chunk(1, 0, 0), chunk(2, 0, 0)].map((c) => committer.submit(c));
    open();
    await Promise.all(all);
    expect(output.rounds.map((r) => r.offsets.map((o) => [o.tp, o.generationId]))).toEqual([
      [['in/0', 5]],
      [
        ['in/1', 6],
        ['in/2', 6],
      ],
    ]);
  });

  it('after a failed round, rejects a chunk that continues past its failed chunks, until the partition is read again or held anew', async () => {
    const output = new FakeOutput();
    output.failNext = 1;
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 1000, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 100, log });
    await expect(committer.submit(chunk(0, 10, 19))).rejects.toMatchObject({ stale: false });
    expect(output.aborts).toBe(1);
    // Handled before the partition heard of the failure: would skip 10-19.
    await expect(committer.submit(chunk(0, 20, 29))).rejects.toMatchObject({ stale: false });
    // The partition read again from its committed offset; another partition is not concerned.
    await Promise.all([committer.submit(chunk(0, 10, 14)), committer.submit(chunk(1, 50, 59))]);
    output.failNext = 1;
    await expect(committer.submit(chunk(2, 0, 9))).rejects.toBeDefined();
    // Partition 2 assigned again (a new tenure), from an offset another member committed.
    await committer.submit(chunk(2, 30, 39, 2));
    expect(output.rounds.flatMap((r) => r.records)).toEqual(['0:10-14', '1:50-59', '2:30-39']);
  });

  it('after a failed round the broker committed all the same, takes the partition read again from past the failed chunks (a new read), not only from before them', async () => {
    const output = new FakeOutput();
    output.failNext = 1;
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 1000, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 100, log });
    // The transaction coordinator logged the commit, then its answer was lost: the round failed here, the offset is 20.
    await expect(committer.submit(chunk(0, 10, 19))).rejects.toMatchObject({ stale: false });
    // The read the failure interrupted still cannot go on past it.
    await expect(committer.submit(chunk(0, 20, 29))).rejects.toMatchObject({ stale: false });
    // The partition read again from its committed offset, 20: a new read, committed (before, it was refused on every read again).
    await committer.submit(chunk(0, 20, 29, 1, 1));
    await committer.submit(chunk(0, 30, 39, 1, 1));
    expect(output.rounds.flatMap((r) => r.records)).toEqual(['0:20-29', '0:30-39']);
  });

  it('with two units in flight, prepares the next round while the one before commits, commits it after that one, and never opens a third', async () => {
    const output = new PipelinedOutput();
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 1000, sendsInFlight: 1, round: unbounded, maxQueuedRecords: 100, log });
    const first = committer.submit(chunk(0, 0, 0));
    await until(() => output.endTxns.length === 1);
    // The first round's EndTxn is in flight: the next chunk's round begins on the other unit, and waits for it.
    const second = committer.submit(chunk(0, 1, 1));
    await settle();
    expect(output.open).toBe(2);
    expect(output.endTxns).toHaveLength(1);
    // A third chunk waits: both units are open.
    const third = committer.submit(chunk(1, 0, 0));
    await settle();
    expect(output.open).toBe(2);
    output.endTxns[0]!(true);
    await first;
    await until(() => output.endTxns.length === 2);
    output.endTxns[1]!(true);
    await second;
    await until(() => output.endTxns.length === 3);
    output.endTxns[2]!(true);
    await third;
    expect(output.committed).toEqual([['0:0-0'], ['0:1-1'], ['1:0-0']]);
    expect(output.maxOpen).toBe(2);
  });

  it('with two units in flight, aborts the round prepared after one that failed, rejects its chunks, and commits what comes after', async () => {
    const output = new PipelinedOutput();
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 1000, sendsInFlight: 1, round: unbounded, maxQueuedRecords: 100, log });
    const first = committer.submit(chunk(0, 0, 4));
    await until(() => output.endTxns.length === 1);
    const second = committer.submit(chunk(0, 5, 9));
    await settle();
    output.endTxns[0]!(false);
    await expect(first).rejects.toMatchObject({ stale: false });
    // Partition 0's records 5-9 follow the failed 0-4: their round is aborted without an EndTxn.
    await expect(second).rejects.toMatchObject({ stale: false });
    expect(output.aborts).toBe(2);
    expect(output.endTxns).toHaveLength(1);
    // Read again from the committed offset, and another partition: committed.
    const again = [committer.submit(chunk(0, 0, 4)), committer.submit(chunk(1, 0, 0))];
    await until(() => output.endTxns.length === 2);
    output.endTxns[1]!(true);
    await until(() => output.endTxns.length === 3);
    output.endTxns[2]!(true);
    await Promise.all(again);
    expect(output.committed.flat()).toEqual(['0:0-4', '1:0-0']);
    expect(output.open).toBe(0);
  });

  it('makes submitters wait for room once maxQueuedRecords are queued', async () => {
    const output = new FakeOutput();
    let open!: () => void;
    output.gate = new Promise((resolve) => (open = resolve));
    const committer = new Committer({ output, generationOf: () => generation(1), requestBytes: 1000, sendsInFlight: 2, round: unbounded, maxQueuedRecords: 10, log });
    void committer.submit(chunk(0, 0, 9));
    void committer.submit(chunk(0, 10, 19));
    let roomy = false;
    const room = committer.room().then(() => (roomy = true));
    await settle();
    expect(roomy).toBe(false);
    open();
    await room;
    await committer.drain();
    expect(roomy).toBe(true);
  });
});

describe('round sizing', () => {
  const limits: RoundLimits = { maxRecords: 100, maxBytes: 1000, maxMs: 50 };
  it('takes more while more is queued and no limit is reached, by records, bytes or time', () => {
    expect(roundTakesMore({ records: 99, bytes: 999, openedAt: 0 }, limits, true, 49)).toBe(true);
    expect(roundTakesMore({ records: 99, bytes: 999, openedAt: 0 }, limits, false, 0)).toBe(false);
    expect(roundTakesMore({ records: 100, bytes: 0, openedAt: 0 }, limits, true, 0)).toBe(false);
    expect(roundTakesMore({ records: 0, bytes: 1000, openedAt: 0 }, limits, true, 0)).toBe(false);
    expect(roundTakesMore({ records: 0, bytes: 0, openedAt: 10 }, limits, true, 60)).toBe(false);
  });
});
