import { createHash } from 'node:crypto';

/**
 * Heavy work in turns of its own. The services `sluice up` runs share one event loop, so work that takes
 * tens of milliseconds (parsing 1 MiB of schema text) is split into steps, one per turn, with the loop free
 * between them; each step's result is kept (TextMemo) for the synchronous code that then needs it all at once.
 */

/** Texts at least this long (in characters) are worked on in steps and their results kept; shorter ones take well under a millisecond. */
export const LONG_TEXT = 16 * 1024;

/**
 * How many results of each step a memo keeps: enough for the long texts being prepared at once (a result evicted
 * before its plan is worked out again there). Few, since each may be 1 MiB and a larger heap lengthens every major GC.
 */
export const STEP_MEMO_LIMIT = 8;

/**
 * Resolves once the event loop has gone round: timers and I/O that arrived meanwhile (a /healthz) run first.
 * One setImmediate from an I/O callback would run in the same round, before them; the second is in the next.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * A key for a list of texts: their SHA-256, each text prefixed by its length so that no two lists share one.
 * A Map hashes a 1 MiB string key at every look-up (2-3 ms); SHA-256 reads it in under one.
 */
export function textsKey(texts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const text of texts) hash.update(`${text.length}:`).update(text);
  return hash.digest('base64');
}

/**
 * Results (or the error thrown) of a pure function of text, for the last `limit` keys: what a step computed in
 * its own turn, found again by the code that runs after it. Bounded, so texts sent once are not kept.
 */
export class TextMemo<V> {
  readonly #limit: number;
  readonly #entries = new Map<string, { value: V } | { error: unknown }>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(key: string, compute: () => V): V {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      try {
        entry = { value: compute() };
      } catch (error) {
        entry = { error };
      }
      if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(key, entry);
    }
    if ('error' in entry) throw entry.error;
    return entry.value;
  }
}
