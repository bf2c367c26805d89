import { setTimeout as sleep } from 'node:timers/promises';

/** Retry timing for records whose handler failed with a retryable error. */

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(max, base·2^(attempt-1))].
 * Jitter spreads out the retries of many partitions hitting the same failing
 * dependency, so they do not come back in lockstep.
 */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Waits `ms` in slices, calling `heartbeat` between them so a long backoff does
 * not get the member evicted from its group; stops early (returns false) when
 * `running` turns false.
 */
export async function waitWithHeartbeats(ms: number, heartbeat: () => Promise<void>, running: () => boolean, sliceMs = 1000): Promise<boolean> {
  const until = Date.now() + ms;
  for (let left = ms; left > 0; left = until - Date.now()) {
    if (!running()) return false;
    await sleep(Math.min(sliceMs, left));
    await heartbeat();
  }
  return running();
}
