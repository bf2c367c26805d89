import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Every deadline Sluice sets, in one place: `work`, or what `expired()` returns
 * (or throws) if `work` has not settled within `ms`. The timer never outlives
 * the race, and `work` goes on after the deadline (nothing here can cancel it).
 */
export function withDeadline<T, U = never>(work: Promise<T>, ms: number, expired: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(expired());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Every wait for a state to be reached (a local process up or gone, a partition's stable offset caught up), in one place: asks `ready` every `intervalMs` until it
 * answers true (resolves true) or the `deadline` (a Date.now() time) passes (resolves false). `ready` may throw
 * to end the wait early (the process exited while starting).
 */
export async function pollUntil(ready: () => boolean | Promise<boolean>, deadline: number, intervalMs: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (await ready()) return true;
    await sleep(intervalMs);
  }
  return false;
}
