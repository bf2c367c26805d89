import { connect, type ChannelModel } from 'amqplib';
import { BridgeError, describeCause } from '../../core/errors.ts';
import { retry, retryPolicies, type RetryPolicy } from '../../core/retry.ts';
import type { Logger } from '../../core/logger.ts';

/**
 * One RabbitMQ connection and what was set up on it (a channel, its exchange or
 * queue, a consumer), re-established by the `bridge` retry policy whenever the
 * connection or the channel goes away. Callers get the current setup with
 * `get()`, and report a failure they saw with `invalidate()`. When the policy
 * is spent, `get()` fails saying why; the next `get()` starts over.
 */

export interface LinkEvents<T> {
  /** Sets up channels, exchanges, queues, consumers on a fresh connection. */
  setup(connection: ChannelModel): Promise<T>;
  /** Closes the setup's channels; the connection is closed after it. */
  teardown?(value: T): Promise<void>;
}

export class AmqpLink<T> {
  readonly #url: string;
  readonly #log: Logger;
  readonly #events: LinkEvents<T>;
  readonly #policy: RetryPolicy;
  #current: Promise<{ connection: ChannelModel; value: T }> | undefined;
  #closed = false;
  #abort = new AbortController();
  /** Connections made so far; the first is not a reconnect. */
  connections = 0;

  constructor(url: string, log: Logger, events: LinkEvents<T>, policy: RetryPolicy = retryPolicies.bridge) {
    this.#url = url;
    this.#log = log;
    this.#events = events;
    this.#policy = policy;
  }

  get(): Promise<T> {
    if (this.#closed) return Promise.reject(new BridgeError('the RabbitMQ link is closed'));
    this.#current ??= this.#connect();
    return this.#current.then((c) => c.value);
  }

  async #connect(): Promise<{ connection: ChannelModel; value: T }> {
    try {
      return await retry(this.#policy, () => this.#connectOnce(), {
        // Any failure to connect or set up may heal (RabbitMQ restarting, a queue being declared elsewhere) until the link closes.
        retryable: () => !this.#closed,
        signal: this.#abort.signal,
        onRetry: (error, attempt, delay) => this.#log.warn({ err: error, attempt, retryInMs: delay }, 'cannot connect to RabbitMQ; retrying'),
      });
    } catch (error) {
      this.#current = undefined;
      if (this.#closed) throw new BridgeError('the RabbitMQ link is closed');
      const why = `cannot connect to RabbitMQ after ${this.#policy.retries + 1} attempts (the ${this.#policy.name} retry policy): ${describeCause(error)}`;
      this.#log.error({ err: error }, why);
      throw new BridgeError(why, { retryable: true, cause: error });
    }
  }

  async #connectOnce(): Promise<{ connection: ChannelModel; value: T }> {
    if (this.#closed) throw new BridgeError('the RabbitMQ link is closed');
    let connection: ChannelModel | undefined;
    try {
      connection = await connect(this.#url, { timeout: 5000 });
      const value = await this.#events.setup(connection);
      const current = { connection, value };
      const lost = (error?: Error) => {
        if (this.#current !== pending) return;
        this.#log.warn({ err: error }, 'RabbitMQ connection lost; reconnecting');
        this.#current = undefined;
      };
      // 'error' always precedes 'close'; handling both keeps an unhandled 'error' from crashing the process.
      connection.on('error', (error: Error) => this.#log.warn({ err: error }, 'RabbitMQ connection error'));
      connection.on('close', lost);
      const pending = Promise.resolve(current);
      this.#current = pending;
      this.connections++;
      this.#log.info({ reconnect: this.connections > 1 }, 'connected to RabbitMQ');
      return current;
    } catch (error) {
      await connection?.close().catch((closeError: unknown) => this.#log.debug({ err: closeError }, 'closing a half-set-up RabbitMQ connection failed'));
      throw error;
    }
  }

  /** Detaches the current connection, if any, and waits for it to be set up or to fail. */
  async #detach(): Promise<{ connection: ChannelModel; value: T } | undefined> {
    const current = this.#current;
    this.#current = undefined;
    return current?.then(
      (c) => c,
      () => undefined,
    );
  }

  /** Drops the current connection (after a failed publish or a dead channel); the next `get()` reconnects. */
  async invalidate(): Promise<void> {
    const settled = await this.#detach();
    await settled?.connection.close().catch((error: unknown) => this.#log.debug({ err: error }, 'closing a broken RabbitMQ connection failed'));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    const settled = await this.#detach();
    if (!settled) return;
    await this.#events.teardown?.(settled.value);
    await settled.connection.close().catch((error: unknown) => this.#log.debug({ err: error }, 'RabbitMQ connection was already closed'));
  }
}
