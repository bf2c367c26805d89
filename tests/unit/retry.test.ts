import { describe, expect, it } from 'vitest';
import { pollUntil, withDeadline } from '../../core/deadline.ts';
import { BrokerUnavailableError, isProgrammingError, KafkaError, ValidationError } from '../../core/errors.ts';
import { BackoffPolicy, retry, retryPolicies } from '../../core/retry.ts';

describe('retry policies', () => {
  it('backs off exponentially up to the cap, with full jitter or none', () => {
    const exact = new BackoffPolicy({ name: 't', retries: 5, baseMs: 100, maxMs: 500, jitter: 'none' });
    expect([1, 2, 3, 4, 5].map((a) => exact.delayMs(a))).toEqual([100, 200, 400, 500, 500]);
    const jittered = new BackoffPolicy({ name: 't', retries: 5, baseMs: 100, maxMs: 500, jitter: 'full', random: () => 0.5 });
    expect([1, 2, 3].map((a) => jittered.delayMs(a))).toEqual([50, 100, 200]);
  });

  it('retries CONCURRENT_TRANSACTIONS within milliseconds (2, 4, 8, 16, 20 ms), then and for other errors with the backoff', () => {
    const concurrent = new KafkaError('SLUICE_KAFKA_CONCURRENT_TRANSACTIONS', 'busy', { retryable: true });
    expect([1, 2, 3, 4, 5].map((attempt) => retryPolicies.transaction.delayMs(attempt, concurrent))).toEqual([2, 4, 8, 16, 20]);
    // A failover: the markers wait for partitions to move, so later attempts back off for real.
    const later = Array.from({ length: 50 }, () => retryPolicies.transaction.delayMs(8, concurrent));
    expect(Math.max(...later)).toBeGreaterThan(20);
    const other = new BrokerUnavailableError('down');
    const delays = Array.from({ length: 50 }, () => retryPolicies.transaction.delayMs(5, other));
    expect(Math.max(...delays)).toBeGreaterThan(20);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1600);
  });

  it('fits the ingress policy in its produce budget', () => {
    for (const budget of [500, 2000, 10_000, 60_000]) {
      const policy = retryPolicies.produce(budget);
      expect(policy.totalCeilingMs()).toBeLessThanOrEqual(Math.max(budget / 2, policy.baseMs));
      expect(policy.retries).toBeGreaterThanOrEqual(1);
    }
  });

  it('retries retryable failures, stops at the first fatal one and when retries are spent', async () => {
    const fast = new BackoffPolicy({ name: 't', retries: 3, baseMs: 1, maxMs: 1, jitter: 'none' });
    let calls = 0;
    await expect(retry(fast, async () => (++calls < 3 ? Promise.reject(new BrokerUnavailableError('down')) : 'ok'))).resolves.toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(retry(fast, async () => Promise.reject(new ValidationError([], `fatal ${++calls}`)))).rejects.toThrow('fatal 1');
    calls = 0;
    await expect(retry(fast, async () => Promise.reject(new BrokerUnavailableError(`down ${++calls}`)))).rejects.toThrow('down 4');
  });
});

describe('one classification, one deadline', () => {
  const quick = new BackoffPolicy({ name: 'quick', retries: 5, baseMs: 0, maxMs: 0, jitter: 'none' });

  it('never retries a programming error, whatever the caller counts as retryable', async () => {
    for (const bug of [new TypeError('x is not a function'), new RangeError('bad length'), new ReferenceError('y is not defined')]) {
      let calls = 0;
      const failing = retry(
        quick,
        async () => {
          calls++;
          throw bug;
        },
        { retryable: () => true },
      );
      await expect(failing).rejects.toBe(bug);
      expect(calls).toBe(1);
    }
    // A library's wrapped failure (fetch's "fetch failed" carries its cause) is a condition, not a bug.
    expect(isProgrammingError(new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') }))).toBe(false);
  });

  it('answers with the work, or with what expiry returns or throws', async () => {
    expect(await withDeadline(Promise.resolve(1), 1000, () => 2)).toBe(1);
    expect(await withDeadline(new Promise<number>(() => undefined), 1, () => 2)).toBe(2);
    await expect(
      withDeadline(new Promise<number>(() => undefined), 1, () => {
        throw new Error('late');
      }),
    ).rejects.toThrow('late');
  });

  it('polls until ready (true), until the deadline (false), or until the check throws', async () => {
    let asked = 0;
    expect(await pollUntil(() => ++asked === 3, Date.now() + 60_000, 1)).toBe(true);
    expect(asked).toBe(3);
    expect(await pollUntil(() => false, Date.now() - 1, 1)).toBe(false);
    await expect(
      pollUntil(
        () => {
          throw new Error('exited while starting');
        },
        Date.now() + 60_000,
        1,
      ),
    ).rejects.toThrow('exited while starting');
  });
});
