import type { OutgoingRecord } from '../../kafka/index.ts';
import type { RecordAck } from '../../producers/batching-producer.ts';
import { CLAIM_HEADER, refText, sameRef, type ClaimJob, type ClaimRef, type HeldKey } from '../../producers/idempotency-claims.ts';
import type { ClaimStore } from '../../producers/idempotency.ts';

/**
 * One replica's claims in memory, for an Idempotency in unit tests: a key's first claim holds it; its events are
 * found by their claim header among `written` (every record the test's producer wrote, with its acknowledgement).
 */
export class MemoryClaims implements ClaimStore {
  readonly started = true;
  readonly #keys = new Map<string, HeldKey & { print: string }>();
  readonly #written: readonly { record: OutgoingRecord; ack: RecordAck }[];
  #next = 0n;
  constructor(written: readonly { record: OutgoingRecord; ack: RecordAck }[]) {
    this.#written = written;
  }
  async start(): Promise<void> {}
  has(id: string): boolean {
    return this.#keys.has(id);
  }
  held(id: string): HeldKey | undefined {
    return this.#keys.get(id);
  }
  current(id: string): ClaimRef | undefined {
    return this.#keys.get(id);
  }
  async fingerprintOf(ref: ClaimRef): Promise<string | undefined> {
    return [...this.#keys.values()].find((k) => sameRef(k, ref))?.print;
  }
  expired(): boolean {
    return false;
  }
  async written(_topic: string, held: HeldKey): Promise<Map<number, RecordAck>> {
    const found = new Map<number, RecordAck>();
    for (const { record, ack } of this.#written) {
      const tag = record.headers?.find(([name]) => name === CLAIM_HEADER)?.[1]?.toString();
      if (tag?.startsWith(`${refText(held)}:`)) found.set(Number(tag.slice(tag.lastIndexOf(':') + 1)), ack);
    }
    return found;
  }
  async claim(job: ClaimJob): Promise<ClaimRef | undefined> {
    if (this.#keys.has(job.id)) return undefined;
    const ref = { partition: 0, offset: this.#next++, slot: 0 };
    this.#keys.set(job.id, { ...ref, first: Date.now(), at: Date.now(), owner: 'here', print: job.fingerprint });
    return ref;
  }
}
