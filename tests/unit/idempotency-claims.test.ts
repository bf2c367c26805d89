import { describe, expect, it } from 'vitest';
import { BrokerUnavailableError, IdempotencyKeyInUseError, IdempotencyKeyReusedError } from '../../core/errors.ts';
import type { OutgoingRecord } from '../../kafka/index.ts';
import type { RecordAck } from '../../producers/batching-producer.ts';
import { applyClaims, ClaimWriter, parseClaims, type ClaimRef, type ClaimsValue, type HeldKey } from '../../producers/idempotency-claims.ts';
import { ClaimTable, keyId } from '../../producers/claim-table.ts';
import { Idempotency, type ClaimStore, type PreparedProduce } from '../../producers/idempotency.ts';

const DAY = 86_400_000;

/** Applies claims records in log order: each entry is one record (its claims, its writer, its time). */
function replay(records: { owner: string; at: number; claims: ClaimsValue['c'] }[]): { get(scope: string): HeldKey | undefined } {
  const keys = new ClaimTable();
  records.forEach((r, offset) => applyClaims(keys, { v: 2, o: r.owner, c: r.claims }, r.at, 0, BigInt(offset), DAY));
  return { get: (scope) => keys.get(keyId(scope)) };
}

const where = (held: HeldKey | undefined) => held && { offset: held.offset, slot: held.slot, owner: held.owner, earlier: held.earlier?.map((r) => [r.offset, r.slot]) };

describe('claims: who holds a key', () => {
  it('the first claim in the log holds the key; a later one of the same key loses', () => {
    const keys = replay([
      {
        owner: 'a',
        at: 1000,
        claims: [
          ['k1', 'f1'],
          ['k2', 'f2'],
        ],
      },
      {
        owner: 'b',
        at: 1001,
        claims: [
          ['k2', 'f2'],
          ['k3', 'f3'],
        ],
      },
    ]);
    expect(where(keys.get('k2'))).toEqual({ offset: 0n, slot: 1, owner: 'a', earlier: undefined });
    expect(where(keys.get('k3'))).toEqual({ offset: 1n, slot: 1, owner: 'b', earlier: undefined });
  });

  it('a takeover holds the key only when it names the current claim; of two takeovers the first wins', () => {
    const keys = replay([
      { owner: 'a', at: 1000, claims: [['k', 'f']] },
      { owner: 'b', at: 40_000, claims: [['k', 'f', 0, '0', 0]] },
      { owner: 'c', at: 40_001, claims: [['k', 'f', 0, '0', 0]] },
    ]);
    expect(where(keys.get('k'))).toEqual({ offset: 1n, slot: 0, owner: 'b', earlier: [[0n, 0]] });
    // The first claim's time stays: the retention window counts from the key's first request.
    expect(keys.get('k')!.first).toBe(1000);
    expect(keys.get('k')!.at).toBe(40_000);
  });

  it('a takeover naming a claim that is not the current one loses', () => {
    const keys = replay([
      { owner: 'a', at: 1000, claims: [['k', 'f']] },
      { owner: 'b', at: 2000, claims: [['k', 'f', 0, '7', 3]] },
    ]);
    expect(where(keys.get('k'))).toEqual({ offset: 0n, slot: 0, owner: 'a', earlier: undefined });
  });

  it('a key held past the retention window is new again', () => {
    const keys = replay([
      { owner: 'a', at: 1000, claims: [['k', 'f']] },
      { owner: 'b', at: 1000 + DAY + 1, claims: [['k', 'g']] },
    ]);
    expect(where(keys.get('k'))).toEqual({ offset: 1n, slot: 0, owner: 'b', earlier: undefined });
  });

  it("a record's key ids (d) and its scopes name the same keys: records of replicas that write no ids, or unreadable ones, count alike", () => {
    const keys = new ClaimTable();
    applyClaims(keys, { v: 2, o: 'new', c: [['k1', 'f']], d: [keyId('k1')] }, 1000, 0, 0n, DAY);
    applyClaims(
      keys,
      {
        v: 2,
        o: 'old',
        c: [
          ['k1', 'f'],
          ['k2', 'f'],
        ],
      },
      1001,
      0,
      1n,
      DAY,
    );
    applyClaims(
      keys,
      {
        v: 2,
        o: 'odd',
        c: [
          ['k2', 'f'],
          ['k3', 'f'],
        ],
        d: ['short', 'ids'],
      },
      1002,
      0,
      2n,
      DAY,
    );
    expect([keys.get(keyId('k1'))?.owner, keys.get(keyId('k2'))?.owner, keys.get(keyId('k3'))?.owner]).toEqual(['new', 'old', 'odd']);
  });

  it('reads claims records and ignores anything else on the topic', () => {
    expect(parseClaims(Buffer.from('{"v":2,"o":"a","c":[["k","f"]]}'))).toEqual({ v: 2, o: 'a', c: [['k', 'f']] });
    expect(parseClaims(Buffer.from('{"fingerprint":"x","status":200,"body":{},"at":1}'))).toBeUndefined();
    expect(parseClaims(Buffer.from('not json'))).toBeUndefined();
  });
});

/** A port whose send is held until released, and whose store is `applyClaims` over what was sent. */
class FakePort {
  readonly sent: ClaimsValue[] = [];
  readonly keys = new ClaimTable();
  gate: Promise<void> | undefined;
  failWith: Error | undefined;

  async send(record: OutgoingRecord): Promise<{ partition: number; offset: bigint }> {
    await this.gate;
    if (this.failWith) throw this.failWith;
    this.sent.push(JSON.parse(record.value!.toString()) as ClaimsValue);
    return { partition: 0, offset: BigInt(this.sent.length - 1) };
  }

  async wrote(value: ClaimsValue, at: number, partition: number, offset: bigint): Promise<void> {
    applyClaims(this.keys, value, at, partition, offset, DAY);
  }

  holds(id: string, ref: ClaimRef): boolean {
    return this.keys.holds(id, ref);
  }
}

describe('ClaimWriter', () => {
  it('sends the claims that queued meanwhile in one record, and tells each request whether it holds its key', async () => {
    const port = new FakePort();
    const writer = new ClaimWriter(port, 'claims', 'me');
    let release!: () => void;
    port.gate = new Promise((resolve) => (release = resolve));
    const first = writer.claim({ scope: 'a', id: keyId('a'), fingerprint: 'fa' });
    const queued = [
      writer.claim({ scope: 'b', id: keyId('b'), fingerprint: 'fb' }),
      writer.claim({ scope: 'a', id: keyId('a'), fingerprint: 'fa' }),
      writer.claim({ scope: 'c', id: keyId('c'), fingerprint: 'fc', replaces: { partition: 0, offset: 9n, slot: 0 } }),
    ];
    port.gate = undefined;
    release();
    expect(await first).toEqual({ partition: 0, offset: 0n, slot: 0 });
    // 'a' is held by the first record's claim, so its second claim lost; 'c' names a claim nobody holds it by, and nothing does: it holds it.
    expect(await Promise.all(queued)).toEqual([{ partition: 0, offset: 1n, slot: 0 }, undefined, { partition: 0, offset: 1n, slot: 2 }]);
    expect(port.sent.map((v) => v.c)).toEqual([
      [['a', 'fa']],
      [
        ['b', 'fb'],
        ['a', 'fa'],
        ['c', 'fc', 0, '9', 0],
      ],
    ]);
    expect(port.sent.every((v) => v.v === 2 && v.o === 'me')).toBe(true);
    // Each claim's key id beside it, so other replicas need not hash the scopes.
    expect(port.sent[1]!.d).toEqual(['b', 'a', 'c'].map(keyId));
  });

  it('fails every claim of a record that was not written, and goes on with the next', async () => {
    const port = new FakePort();
    const writer = new ClaimWriter(port, 'claims', 'me');
    port.failWith = new BrokerUnavailableError('no broker');
    await expect(Promise.all([writer.claim({ scope: 'a', id: keyId('a'), fingerprint: 'f' }), writer.claim({ scope: 'b', id: keyId('b'), fingerprint: 'f' })])).rejects.toThrow('no broker');
    port.failWith = undefined;
    expect(await writer.claim({ scope: 'a', id: keyId('a'), fingerprint: 'f' })).toEqual({ partition: 0, offset: 0n, slot: 0 });
  });
});

/** One replica's view, scripted: the holder of the key changes while a retry looks for its events (the follower applied a takeover). */
class ScriptedStore implements ClaimStore {
  holder: HeldKey;
  /** Events on the route's topic, by the claim they were written under. */
  readonly events = new Map<string, RecordAck>();
  /** Applied while the first scan runs. */
  takeoverDuringScan: HeldKey | undefined;
  scans: string[][] = [];

  constructor(holder: HeldKey) {
    this.holder = holder;
  }

  async start(): Promise<void> {}
  readonly started = true;
  has(): boolean {
    return true;
  }
  held(): HeldKey {
    return { ...this.holder, earlier: this.holder.earlier && [...this.holder.earlier] };
  }
  current(): ClaimRef {
    return this.holder;
  }
  async fingerprintOf(): Promise<string> {
    return 'print';
  }
  expired(held: HeldKey): boolean {
    return held.owner === 'gone';
  }
  async written(_topic: string, held: HeldKey): Promise<Map<number, RecordAck>> {
    const tags = [...(held.earlier ?? []), held].map((r) => `${r.partition}:${r.offset}:${r.slot}`);
    this.scans.push(tags);
    if (this.takeoverDuringScan) {
      this.holder = this.takeoverDuringScan;
      this.takeoverDuringScan = undefined;
    }
    const found = new Map<number, RecordAck>();
    for (const tag of tags) if (this.events.has(tag)) found.set(0, this.events.get(tag)!);
    return found;
  }
}

describe('Idempotency: a retry while the key changes hands', () => {
  const gone: HeldKey = { partition: 0, offset: 65n, slot: 0, first: 1000, at: 1000, owner: 'gone' };
  const taken: HeldKey = { partition: 0, offset: 67n, slot: 0, first: 1000, at: 3000, owner: 'b', earlier: [{ partition: 0, offset: 65n, slot: 0 }] };
  const prepared: PreparedProduce = {
    records: [{ topic: 'orders', value: Buffer.from('event') }],
    answer: (acks) => ({ status: 200, body: acks[0] }),
  };
  const unused = {
    claim: async () => {
      throw new Error('no claim expected');
    },
  };
  const noEvents = {
    produce: async () => {
      throw new Error('no write expected');
    },
  };

  it("looks again for the new claim's events (not 409) when another replica took the key over during the scan", async () => {
    const store = new ScriptedStore(gone);
    store.takeoverDuringScan = taken;
    store.events.set('0:67:0', { topic: 'orders', partition: 1, offset: '8' });
    const idempotency = new Idempotency(store, unused, noEvents, { owner: 'a', timeoutMs: 5000 });
    const answer = await idempotency.produce('scope', 'print', prepared);
    expect(answer).toEqual({ status: 200, body: { topic: 'orders', partition: 1, offset: '8' }, replayed: true });
    expect(store.scans).toEqual([['0:65:0'], ['0:65:0', '0:67:0']]);
  });

  it('answers 409 while the current holder may still be writing, and 422 for another body', async () => {
    const idempotency = new Idempotency(new ScriptedStore(taken), unused, noEvents, { owner: 'a', timeoutMs: 5000 });
    await expect(idempotency.produce('scope', 'print', prepared)).rejects.toThrow(IdempotencyKeyInUseError);
    await expect(idempotency.produce('scope', 'other body', prepared)).rejects.toThrow(IdempotencyKeyReusedError);
  });

  it('answers 503 once a request has waited the produce timeout, whatever it waits for', async () => {
    const store = new ScriptedStore(taken);
    // Kafka does not answer the look-up at all.
    store.fingerprintOf = () => new Promise<string>(() => undefined);
    const idempotency = new Idempotency(store, unused, noEvents, { owner: 'a', timeoutMs: 150 });
    const started = Date.now();
    await expect(idempotency.produce('scope', 'print', prepared)).rejects.toThrow(BrokerUnavailableError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    // The key stays in flight until the work settles: a retry meanwhile is a 409, not a second write.
    await expect(idempotency.produce('scope', 'print', prepared)).rejects.toThrow(IdempotencyKeyInUseError);
  });

  it('a request answered 503 at its deadline keeps its key in flight until its work settles, and then lets it go', async () => {
    const store = new ScriptedStore(gone);
    store.events.set('0:65:0', { topic: 'orders', partition: 1, offset: '8' });
    // The first look-up answers only after the deadline; later ones at once.
    let late: (() => void) | undefined;
    store.fingerprintOf = () => (late === undefined && store.scans.length === 0 ? new Promise<string>((resolve) => (late = () => resolve('print'))) : Promise.resolve('print'));
    const idempotency = new Idempotency(store, unused, noEvents, { owner: 'a', timeoutMs: 100 });
    const first = idempotency.produce('scope', 'print', prepared);
    await expect(first).rejects.toThrow(BrokerUnavailableError);
    await expect(idempotency.produce('scope', 'print', prepared)).rejects.toThrow(IdempotencyKeyInUseError);
    late!();
    // Settled (it found the events): the key is no longer in flight, and a retry is answered from them.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await idempotency.produce('scope', 'print', prepared)).toEqual({ status: 200, body: { topic: 'orders', partition: 1, offset: '8' }, replayed: true });
  });
});
