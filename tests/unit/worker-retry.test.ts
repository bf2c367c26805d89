import { describe, expect, it } from 'vitest';
import { retryPolicies } from '../../core/retry.ts';
import { waitWhile } from '../../consumers/record-processor.ts';

describe('handler retries', () => {
  it('gives a record workerMaxAttempts attempts, the wait doubling up to the maximum with full jitter', () => {
    const policy = retryPolicies.handler({ maxAttempts: 5, baseMs: 100, maxMs: 1000 });
    expect(policy.retries).toBe(4);
    expect([1, 2, 3, 4, 5, 10].map((attempt) => policy.ceilingMs(attempt))).toEqual([100, 200, 400, 800, 1000, 1000]);
    for (let i = 0; i < 200; i++) expect(policy.delayMs(2)).toBeLessThan(200);
  });

  it('waits while the worker runs and stops early when it stops', async () => {
    expect(await waitWhile(30, () => true, 10)).toBe(true);
    let running = true;
    let checksAfterStop = 0;
    setTimeout(() => (running = false), 20);
    // A minute's wait: only stopping early lets it return within the test's timeout.
    const stopped = await waitWhile(
      60_000,
      () => {
        if (!running) checksAfterStop++;
        return running;
      },
      5,
    );
    expect(stopped).toBe(false);
    expect(checksAfterStop).toBe(1);
  });
});
