import { describe, expect, it } from 'vitest';
import { backoffMs, waitWithHeartbeats } from '../../consumers/retry.ts';

describe('retry backoff', () => {
  const policy = { baseMs: 100, maxMs: 1000 };

  it('doubles its ceiling each attempt up to the maximum, with full jitter below it', () => {
    expect([1, 2, 3, 4, 5, 10].map((attempt) => backoffMs(attempt, policy, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffMs(3, policy, () => 0)).toBe(0);
    for (let i = 0; i < 200; i++) expect(backoffMs(2, policy)).toBeLessThan(200);
  });

  it('heartbeats while waiting and stops early when the worker stops', async () => {
    let beats = 0;
    expect(
      await waitWithHeartbeats(
        35,
        async () => void beats++,
        () => true,
        10,
      ),
    ).toBe(true);
    expect(beats).toBeGreaterThanOrEqual(3);
    let running = true;
    const waited = waitWithHeartbeats(
      10_000,
      async () => void (running = false),
      () => running,
      5,
    );
    expect(await waited).toBe(false);
  });
});
