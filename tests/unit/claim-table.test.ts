import { describe, expect, it } from 'vitest';
import { ClaimTable, isKeyId, keyId } from '../../producers/claim-table.ts';

const DAY = 86_400_000;

describe('ClaimTable', () => {
  it('keeps what a Map of the same claims keeps, through growth, expiry and keys claimed anew', () => {
    const table = new ClaimTable();
    const model = new Map<string, { first: number; offset: bigint }>();
    let now = 0;
    // Deterministic: every step claims a fresh key, or one claimed before (a loser, or new again past the window).
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      now += 10;
      const scope = `s-${random(4) === 0 ? random(i + 1) : i}`;
      const id = keyId(scope);
      table.apply(id, { partition: 0, offset: BigInt(i), slot: 0 }, now, 'o', DAY / 1000);
      const known = model.get(id);
      if (known === undefined || now - known.first > DAY / 1000) model.set(id, { first: now, offset: BigInt(i) });
      if (i % 1000 === 999) {
        table.expire(now - DAY / 1000);
        for (const [key, v] of model) if (v.first < now - DAY / 1000) model.delete(key);
      }
    }
    expect(table.size).toBeGreaterThanOrEqual(model.size);
    for (let i = 0; i < 20_000; i++) {
      const id = keyId(`s-${i}`);
      const kept = model.get(id);
      const held = table.get(id);
      if (kept === undefined) expect(held === undefined || held.first < now - DAY / 1000).toBe(true);
      else expect([held?.first, held?.offset]).toEqual([kept.first, kept.offset]);
    }
  });

  it('grows while its ring wraps: every kept entry keeps its claim, the expired stay gone', () => {
    const table = new ClaimTable();
    const claim = (i: number) => table.apply(keyId(`w-${i}`), { partition: i % 3, offset: BigInt(i) * 1000n, slot: i % 7 }, 1000 + i, `o${i % 2}`, DAY);
    // 1000 entries, the oldest 600 expired: the ring's kept entries start at 600 and wrap past the end of its 1024
    // places when it grows (at 1024 entries kept), and again at 2048.
    for (let i = 0; i < 1000; i++) claim(i);
    table.expire(1600);
    for (let i = 1000; i < 3000; i++) claim(i);
    expect(table.size).toBe(2400);
    for (let i = 0; i < 3000; i++) {
      const held = table.get(keyId(`w-${i}`));
      if (i < 600) expect(held).toBeUndefined();
      else expect(held).toEqual({ partition: i % 3, offset: BigInt(i) * 1000n, slot: i % 7, first: 1000 + i, at: 1000 + i, owner: `o${i % 2}` });
    }
  });

  it('a takeover moves the key to the claim naming the current one and remembers the earlier claim', () => {
    const table = new ClaimTable();
    const id = keyId('k');
    table.apply(id, { partition: 0, offset: 1n, slot: 2 }, 1000, 'a', DAY);
    table.apply(id, { partition: 0, offset: 5n, slot: 0 }, 2000, 'b', DAY, { partition: 0, offset: 1n, slot: 3 });
    expect(table.holds(id, { partition: 0, offset: 1n, slot: 2 })).toBe(true);
    table.apply(id, { partition: 0, offset: 6n, slot: 1 }, 3000, 'c', DAY, { partition: 0, offset: 1n, slot: 2 });
    expect(table.get(id)).toEqual({ partition: 0, offset: 6n, slot: 1, first: 1000, at: 3000, owner: 'c', earlier: [{ partition: 0, offset: 1n, slot: 2 }] });
    // Expiry counts from the first claim.
    table.expire(1001);
    expect(table.get(id)).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it('ids are 22 base64url characters; anything else is not one', () => {
    expect(isKeyId(keyId('/v1/orders\nalice\nk'))).toBe(true);
    expect(keyId('/v1/orders\nalice\nk')).not.toBe(keyId('/v1/orders\nbob\nk'));
    for (const bad of ['', 'x'.repeat(21), `${'x'.repeat(21)}=`, 42, null]) expect(isKeyId(bad)).toBe(false);
  });
});
