import type { Logger } from '../core/logger.ts';

export interface Service {
  name: string;
  close(): Promise<void>;
}

/**
 * Owns SIGINT/SIGTERM from the moment a command starts its first service, so a signal
 * that arrives while later services are still starting (an ingress already answering
 * /readyz while its worker joins the group) stops the process cleanly instead of
 * killing it. On a signal it waits for the start in progress, then closes services in
 * reverse start order (workers before the ingress before the registry before Kafka)
 * within the shutdown budget. A second signal exits at once.
 */
export class Lifecycle {
  readonly #services: Service[] = [];
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #stopping = false;
  #starting: Promise<unknown> = Promise.resolve();
  readonly #done: Promise<number>;
  #resolve!: (code: number) => void;

  constructor(log: Logger, timeoutMs: number) {
    this.#log = log;
    this.#timeoutMs = timeoutMs;
    this.#done = new Promise((resolve) => (this.#resolve = resolve));
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
  }

  /** True once a signal arrived: a command stops starting further services. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Runs one start step; what it returns is closed on shutdown. */
  async start(step: () => Promise<Service | Service[] | undefined>): Promise<void> {
    const running = step();
    this.#starting = running.catch(() => undefined);
    const result = await running;
    if (result) this.#services.push(...(Array.isArray(result) ? result : [result]));
  }

  /** Closes what started (after a failed start, or when the command ends on its own). */
  async closeAll(): Promise<boolean> {
    let failed = false;
    for (const service of this.#services.splice(0).reverse()) {
      try {
        await service.close();
        this.#log.info({ component: service.name }, 'stopped');
      } catch (error) {
        failed = true;
        this.#log.error({ err: error, component: service.name }, 'failed to stop cleanly');
      }
    }
    return !failed;
  }

  /** Resolves with the exit code once a signal has stopped every service. */
  untilSignal(): Promise<number> {
    return this.#done;
  }

  serviceNames(): string[] {
    return this.#services.map((s) => s.name);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#stopping) {
      this.#log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(130);
    }
    this.#stopping = true;
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
    this.#log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      this.#log.error({ timeoutMs: this.#timeoutMs }, 'graceful shutdown took too long; exiting');
      process.exit(1);
    }, this.#timeoutMs);
    deadline.unref();
    void this.#starting
      .then(() => this.closeAll())
      .then((ok) => {
        clearTimeout(deadline);
        this.#resolve(ok ? 0 : 1);
      });
  };
}

/** For commands whose services are all up already: waits for a signal, then closes them. */
export function closeOnSignal(services: Service[], log: Logger, timeoutMs: number): Promise<number> {
  const lifecycle = new Lifecycle(log, timeoutMs);
  for (const service of services) void lifecycle.start(async () => service);
  return lifecycle.untilSignal();
}
