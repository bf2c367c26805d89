import { setTimeout as sleep } from 'node:timers/promises';
import { isProgrammingError, isRetryable, SluiceError } from './errors.ts';

/**
 * Every retry Sluice does, in one place: named policies instead of delays and
 * attempt counts tuned call by call. The Kafka seam hands these to the client
 * (kafka/client-options.ts turns a policy into the client's retry options); the
 * rest of Sluice retries its own steps with `retry()`.
 */
export interface RetryPolicy {
  readonly name: string;
  /** Retries after the first attempt (so `retries + 1` attempts at most). */
  readonly retries: number;
  /** The wait before retry number `attempt` (1-based) after `error` (a classified SluiceError when it comes from Kafka). */
  delayMs(attempt: number, error?: unknown): number;
}

export interface BackoffOptions {
  name: string;
  retries: number;
  baseMs: number;
  maxMs: number;
  /**
   * `full`: a uniform delay in [0, ceiling]. Spreads out the retries of many
   * callers failing on the same dependency so they do not come back in lockstep.
   * `equal`: half the ceiling fixed, half random: replicas reconnecting after one outage do not stampede, yet none comes back at once.
   * `none`: exactly the ceiling (a single caller, e.g. a CLI command).
   */
  jitter: 'full' | 'equal' | 'none';
  random?: () => number;
}

/** Exponential backoff: the ceiling doubles from baseMs each attempt, capped at maxMs. */
export class BackoffPolicy implements RetryPolicy {
  readonly name: string;
  readonly retries: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly #jitter: 'full' | 'equal' | 'none';
  readonly #random: () => number;

  constructor(options: BackoffOptions) {
    this.name = options.name;
    this.retries = options.retries;
    this.baseMs = options.baseMs;
    this.maxMs = options.maxMs;
    this.#jitter = options.jitter;
    this.#random = options.random ?? Math.random;
  }

  ceilingMs(attempt: number): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.max(0, attempt - 1));
  }

  delayMs(attempt: number): number {
    const ceiling = this.ceilingMs(attempt);
    if (this.#jitter === 'full') return Math.floor(this.#random() * ceiling);
    return this.#jitter === 'equal' ? Math.round(ceiling / 2 + (this.#random() * ceiling) / 2) : ceiling;
  }

  /** Sum of the ceilings of every retry: the longest this policy waits in total. */
  totalCeilingMs(): number {
    let total = 0;
    for (let attempt = 1; attempt <= this.retries; attempt++) total += this.ceilingMs(attempt);
    return total;
  }
}

/**
 * Transactions. Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS
 * until it has written the previous transaction's markers, which takes
 * milliseconds: the Java client retries it after 20 ms. With the general backoff
 * (the client's default is a whole second) an exactly-once loop measured 1,000
 * records/s; with 20 ms, 23,000/s. A worker at low load begins its next round
 * right after a commit, so the first retries come sooner still (2, 4, 8, 16,
 * 20 ms): markers on a few partitions are usually written within the first one,
 * and every millisecond here is end-to-end latency. Later attempts, and every
 * other error, back off as usual.
 */
const QUICK_CONCURRENT_ATTEMPTS = 5;
export class TransactionPolicy implements RetryPolicy {
  readonly name = 'transaction';
  readonly concurrentTransactionsDelayMs: number;
  readonly #general: BackoffPolicy;

  constructor(general: BackoffPolicy, concurrentTransactionsDelayMs = 20) {
    this.#general = general;
    this.concurrentTransactionsDelayMs = concurrentTransactionsDelayMs;
  }

  get retries(): number {
    return this.#general.retries;
  }

  delayMs(attempt: number, error?: unknown): number {
    // Past the quick attempts the general backoff: during a failover the markers wait for partitions to move, for seconds.
    if (error instanceof SluiceError && error.code === 'SLUICE_KAFKA_CONCURRENT_TRANSACTIONS' && attempt <= QUICK_CONCURRENT_ATTEMPTS) {
      return Math.min(this.concurrentTransactionsDelayMs, 2 ** Math.max(1, attempt));
    }
    return this.#general.delayMs(attempt);
  }
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.floor(value)));

/** Sluice's policies, by the kind of work. */
export const retryPolicies = {
  /**
   * Admin calls, metadata and connections of services and CLI commands (topology
   * apply, the registry store, tail, console): about 20 s of patience, enough for
   * a broker that is restarting or still electing leaders.
   */
  admin: new BackoffPolicy({ name: 'admin', retries: 8, baseMs: 100, maxMs: 5000, jitter: 'none' }),

  /**
   * Optimistic concurrency (the registry store's writes): planned again at once on the fresher state after losing a
   * race with another instance, up to eight attempts.
   */
  conflict: new BackoffPolicy({ name: 'conflict', retries: 7, baseMs: 0, maxMs: 0, jitter: 'none' }),

  /** Long-lived readers and consumers: a broker restart must not end them. */
  reader: new BackoffPolicy({ name: 'reader', retries: 30, baseMs: 100, maxMs: 5000, jitter: 'full' }),

  /**
   * A group member joining again after its membership stream ended, or reading its partitions' committed offsets:
   * for as long as the consumer is open (a broker restart of any length must not end a worker), the wait doubling
   * from 250 ms to 5 s.
   */
  membership: new BackoffPolicy({ name: 'membership', retries: Number.POSITIVE_INFINITY, baseMs: 250, maxMs: 5000, jitter: 'full' }),

  /** Transactional producers (exactly-once workers, dlq replay). */
  transaction: new TransactionPolicy(new BackoffPolicy({ name: 'transaction', retries: 10, baseMs: 100, maxMs: 2000, jitter: 'full' })),

  /**
   * The ingress: a request waits at most `budgetMs` for its acknowledgement, so
   * the client's retries (back-off about half of it, attempts the rest) end in
   * about that time instead of holding queued records for minutes.
   */
  produce(budgetMs: number): BackoffPolicy {
    const baseMs = 100;
    const maxMs = clamp(budgetMs / 4, 200, 5000);
    let retries = 0;
    let waited = 0;
    for (let wait = baseMs; waited + wait <= budgetMs / 2; wait = Math.min(wait * 2, maxMs)) {
      waited += wait;
      retries += 1;
    }
    return new BackoffPolicy({ name: 'produce', retries: Math.max(1, retries), baseMs, maxMs, jitter: 'none' });
  },

  /**
   * The RabbitMQ bridges: reconnecting, producing a batch to Kafka, publishing one to RabbitMQ, a registry look-up.
   * About four minutes of patience (250 ms doubling to 10 s), then the bridge gives up on that step and says why:
   * the messages go back (unacked, or the Kafka batch read again from its commit) rather than being retried forever.
   */
  bridge: new BackoffPolicy({ name: 'bridge', retries: 30, baseMs: 250, maxMs: 10_000, jitter: 'equal' }),

  /** Polling for a condition (partitions getting leaders) every `intervalMs` for about `budgetMs`. */
  poll(intervalMs: number, budgetMs: number): BackoffPolicy {
    return new BackoffPolicy({ name: 'poll', retries: Math.max(1, Math.ceil(budgetMs / intervalMs)), baseMs: intervalMs, maxMs: intervalMs, jitter: 'none' });
  },

  /** A worker handler that failed with a retryable error: full jitter between attempts. */
  handler(options: { maxAttempts: number; baseMs: number; maxMs: number }): BackoffPolicy {
    return new BackoffPolicy({ name: 'handler', retries: options.maxAttempts - 1, baseMs: options.baseMs, maxMs: options.maxMs, jitter: 'full' });
  },
};

export interface RetryOptions {
  /** Which errors to retry; Sluice's own retryable flag by default. A programming error is never retried, whatever this says. */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait (e.g. to log at debug). */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void | Promise<void>;
  signal?: AbortSignal;
}

/** Runs `fn` until it succeeds, fails with an error not worth retrying, or the policy's retries are spent. */
export async function retry<T>(policy: RetryPolicy, fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.retries || isProgrammingError(error) || !retryable(error) || options.signal?.aborted) throw error;
      const delay = policy.delayMs(attempt + 1, error);
      await options.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, undefined, { signal: options.signal }).catch(() => {
        throw error;
      });
    }
  }
}
