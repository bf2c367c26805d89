import type { Logger } from '../core/logger.ts';

export interface LagSample {
  /** Epoch milliseconds. */
  at: number;
  totalLag: number;
  partitions: Record<string, number>;
}

interface Tracked {
  samples: LagSample[];
  lastViewed: number;
}

/**
 * Samples the lag of consumer groups server-side so a chart has history the
 * moment it is opened again. Only groups someone looked at in the last
 * `forgetAfterMs` are sampled: a cluster may hold thousands of groups.
 */
export class LagHistory {
  readonly #groups = new Map<string, Tracked>();
  readonly #timer: NodeJS.Timeout;
  readonly #sample: (groupId: string) => Promise<Omit<LagSample, 'at'>>;
  readonly #log: Logger;
  readonly #keep: number;
  readonly #forgetAfterMs: number;
  #sampling = false;

  constructor(options: { intervalMs: number; keep?: number; forgetAfterMs?: number; logger: Logger; sample: (groupId: string) => Promise<Omit<LagSample, 'at'>> }) {
    this.#sample = options.sample;
    this.#log = options.logger;
    this.#keep = options.keep ?? 360;
    this.#forgetAfterMs = options.forgetAfterMs ?? 30 * 60_000;
    this.#timer = setInterval(() => void this.#tick(), options.intervalMs);
    this.#timer.unref();
  }

  /** Records a sample taken while serving a page, and keeps the group sampled from now on. */
  record(groupId: string, sample: Omit<LagSample, 'at'>): LagSample[] {
    const tracked = this.#groups.get(groupId) ?? { samples: [], lastViewed: 0 };
    tracked.lastViewed = Date.now();
    this.#push(tracked, { at: Date.now(), ...sample });
    this.#groups.set(groupId, tracked);
    return tracked.samples;
  }

  history(groupId: string): LagSample[] {
    const tracked = this.#groups.get(groupId);
    if (tracked) tracked.lastViewed = Date.now();
    return tracked?.samples ?? [];
  }

  #push(tracked: Tracked, sample: LagSample): void {
    tracked.samples.push(sample);
    if (tracked.samples.length > this.#keep) tracked.samples.splice(0, tracked.samples.length - this.#keep);
  }

  async #tick(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      for (const [groupId, tracked] of this.#groups) {
        if (Date.now() - tracked.lastViewed > this.#forgetAfterMs) {
          this.#groups.delete(groupId);
          continue;
        }
        try {
          this.#push(tracked, { at: Date.now(), ...(await this.#sample(groupId)) });
        } catch (error) {
          this.#log.warn({ err: error, groupId }, 'lag sample failed; trying again next interval');
        }
      }
    } finally {
      this.#sampling = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
