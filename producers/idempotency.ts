import { hash } from 'node:crypto';
import { hostname } from 'node:os';
import type { SluiceConfig } from '../core/config.ts';
import { BrokerUnavailableError, IdempotencyKeyError, IdempotencyKeyInUseError, IdempotencyKeyReusedError } from '../core/errors.ts';
import type { OutgoingRecord } from '../kafka/index.ts';
import type { RecordAck } from './batching-producer.ts';
import { keyId } from './claim-table.ts';
import { CLAIM_HEADER, ClaimWriter, refText, sameRef, type ClaimRef, type IdempotencyStore } from './idempotency-claims.ts';

/**
 * `Idempotency-Key` on the produce routes (IETF httpapi idempotency-key draft).
 *
 * State: the topic SLUICE_IDEMPOTENCY_TOPIC, which every replica follows (see
 * idempotency-claims.ts). A keyed request, scoped by route + principal + key:
 * 1. claims the key: its claim goes out in the next claims record, and once
 *    the replica has read that record back it knows whether the claim is the
 *    key's first (every replica decides the same from the same log);
 * 2. if it is, writes its events, each tagged with the claim and its index,
 *    and answers with their offsets;
 * 3. if another claim holds the key (a retry, here or at another replica, or
 *    after a restart), finds that claim's events on the route's topic: all of
 *    them, and it answers what the first request was answered (422 if the body
 *    differs); some missing, and their writer may still be at it (409) until
 *    its lease ends; after that the retry takes the key over with a claim that
 *    names the one it replaces and writes only the missing events.
 *
 * No transaction: a replica killed after its claim and before (or after) its
 * events leaves a claim whose events a retry finds, or does not find and
 * writes once the lease ended. What it costs: one slot in a shared claims
 * record and the wait to read it back, before the events are sent.
 * The lease assumes a writer that lost its claim's lease (SLUICE_IDEMPOTENCY_LEASE_MS,
 * longer than SLUICE_PRODUCE_TIMEOUT_MS) no longer writes under it.
 */

export interface StoredResponse {
  status: number;
  body: unknown;
}

const KEY_TEXT = /^[\x21-\x7e]{1,255}$/;

/** The header's value: an RFC 8941 string (`"abc"`, as the draft writes it) or the bare text; 1-255 visible ASCII characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new IdempotencyKeyError('given more than once');
  const trimmed = header.trim();
  const text = trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
  if (!KEY_TEXT.test(text)) throw new IdempotencyKeyError('expected 1-255 visible ASCII characters, without spaces');
  return text;
}

/**
 * What makes two requests "the same" for a key (the route is part of the key's scope): the `partial`
 * mode and the body's bytes, as the draft fingerprints the payload. A client's retry sends the same bytes;
 * the same events written otherwise (other whitespace) are another request.
 */
export function fingerprint(partial: boolean, body: Buffer): string {
  return `${partial ? 'p' : 'a'}${hash('sha256', body, 'base64url')}`;
}

/** route + principal + key: a key is the caller's own, per route. */
export function scopeOf(route: string, principal: string, key: string): string {
  return `${route}\n${principal}\n${key}`;
}

/** This process, as claims name their writer: stable across restarts when SLUICE_INSTANCE_ID is set. */
function ownerId(config: SluiceConfig): string {
  return config.instanceId ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** What the route hands over: the records to write and how to answer once they are written. */
export interface PreparedProduce {
  records: OutgoingRecord[];
  answer(acks: RecordAck[]): StoredResponse;
}

/** The produce side: the ingress's batching producer. */
export interface EventWriter {
  produce(records: OutgoingRecord[]): Promise<RecordAck[]>;
}

export interface IdempotencyOptions {
  owner: string;
  timeoutMs: number;
  /** Test hook: runs after the events were acknowledged and before the response is sent (a test kills the process here). */
  afterWrite?: () => void;
}

/**
 * The keyed requests in progress in this process, by key id: a second request for a key in flight is a 409. Each is
 * failed with a 503 once it has waited `ms`, by one ticker for all of them, as a timer (and a Promise.race) per request
 * cost a measurable share of a keyed request; late by up to TICK_MS. One Map for both (insertion order is arrival
 * order, so the oldest come first): a keyed request costs one entry and one promise here, not a set entry, a list
 * entry and a promise wrapping another.
 */
class InFlight {
  static readonly TICK_MS = 100;
  readonly #ms: number;
  readonly #requests = new Map<string, { at: number; late: boolean; reject(error: unknown): void }>();
  #ticker: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  has(id: string): boolean {
    return this.#requests.has(id);
  }

  /**
   * `work` for key `id`, failed with a 503 once it has waited too long. Past that deadline the key stays in flight
   * (a retry meanwhile is a 409, not a second write) until `work` itself settles: a retry then finds the events, or
   * writes them.
   */
  run<T>(id: string, work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#requests.set(id, { at: Date.now(), late: false, reject });
      this.#ticker ??= setInterval(() => this.#expire(), Math.min(InFlight.TICK_MS, this.#ms)).unref();
      work.then(
        (value) => {
          this.#requests.delete(id);
          resolve(value);
        },
        (error: unknown) => {
          this.#requests.delete(id);
          reject(error);
        },
      );
    });
  }

  #expire(): void {
    const oldest = Date.now() - this.#ms;
    for (const request of this.#requests.values()) {
      if (request.at > oldest) break;
      if (request.late) continue;
      request.late = true;
      request.reject(new BrokerUnavailableError(`Kafka did not answer within ${this.#ms} ms; retry with the same Idempotency-Key`));
    }
    if (this.#requests.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }
}

/** The answer to `prepared` once every one of its events is in `found` (by index). */
function answerFrom(prepared: PreparedProduce, found: ReadonlyMap<number, RecordAck>): StoredResponse {
  return prepared.answer(prepared.records.map((_, index) => found.get(index)!));
}

/** `record` tagged with its claim (`tag`: the claim's refText and a colon) and its index in the request (CLAIM_HEADER). */
function withTag(record: OutgoingRecord, tag: string, index: number): OutgoingRecord {
  const header = [CLAIM_HEADER, Buffer.from(tag + index)] as const;
  return { ...record, headers: record.headers === undefined ? [header] : [...record.headers, header] };
}

/** A request's key: its scope (route, principal, key), written in its claim, and the id it is known by (keyId). */
interface Key {
  scope: string;
  id: string;
}

/** What the idempotent path asks of the replica's view of the claims (IdempotencyStore; a fake in unit tests). */
export type ClaimStore = Pick<IdempotencyStore, 'start' | 'started' | 'has' | 'held' | 'current' | 'fingerprintOf' | 'written' | 'expired'>;

/** The idempotent path of a produce route: claim the key and write, or answer what the key's first request was answered. */
export class Idempotency {
  readonly #store: ClaimStore;
  readonly #claims: Pick<ClaimWriter, 'claim'>;
  readonly #events: EventWriter;
  readonly #options: IdempotencyOptions;
  /** Keys with a request in progress in this process. */
  readonly #inFlight: InFlight;

  constructor(store: ClaimStore, claims: Pick<ClaimWriter, 'claim'>, events: EventWriter, options: IdempotencyOptions) {
    this.#store = store;
    this.#claims = claims;
    this.#events = events;
    this.#options = options;
    this.#inFlight = new InFlight(options.timeoutMs);
  }

  /** The ingress's: claims go out through the same batching producer as the events. */
  static forIngress(store: IdempotencyStore, events: EventWriter, config: SluiceConfig, afterWrite?: () => void): Idempotency {
    const owner = ownerId(config);
    const claims = new ClaimWriter(
      {
        send: async (record) => {
          const [ack] = await events.produce([record]);
          return { partition: ack!.partition, offset: BigInt(ack!.offset) };
        },
        wrote: (value, at, partition, offset) => store.wrote(value, at, partition, offset),
        holds: (id, ref) => store.holds(id, ref),
      },
      store.topic,
      owner,
      { timeoutMs: config.produceTimeoutMs },
    );
    return new Idempotency(store, claims, events, { owner, timeoutMs: config.produceTimeoutMs, afterWrite });
  }

  produce(scope: string, print: string, prepared: PreparedProduce): Promise<StoredResponse & { replayed?: true }> {
    // The key's id (a hash of its scope): what the store, the claims and the in-flight requests know it by.
    const id = keyId(scope);
    if (this.#inFlight.has(id)) return Promise.reject(new IdempotencyKeyInUseError());
    const key = { scope, id };
    // Nearly every request finds the store started: no async function wrapping another.
    const work = this.#store.started ? this.#claimOrResume(key, print, prepared) : this.#store.start().then(() => this.#claimOrResume(key, print, prepared));
    return this.#inFlight.run(id, work);
  }

  /** A key the store does not hold (a first request) is claimed and its events written, in one chain; else, or when another claim won, resumed. */
  #claimOrResume(key: Key, print: string, prepared: PreparedProduce): Promise<StoredResponse & { replayed?: true }> {
    if (this.#store.has(key.id)) return this.#resume(key, print, prepared);
    return this.#claims.claim({ scope: key.scope, id: key.id, fingerprint: print }).then((ref) => (ref === undefined ? this.#resume(key, print, prepared) : this.#writeFirst(ref, prepared)));
  }

  /** A key's first request: all its events, tagged with `ref`, and its answer straight from their acks. */
  #writeFirst(ref: ClaimRef, prepared: PreparedProduce): StoredResponse | Promise<StoredResponse> {
    const { records } = prepared;
    if (records.length === 0) {
      this.#options.afterWrite?.();
      return prepared.answer([]);
    }
    const tag = `${refText(ref)}:`;
    const tagged = new Array<OutgoingRecord>(records.length);
    for (let index = 0; index < records.length; index++) tagged[index] = withTag(records[index]!, tag, index);
    return this.#events.produce(tagged).then((acks) => {
      this.#options.afterWrite?.();
      return prepared.answer(acks);
    });
  }

  /** A takeover: writes the events `found` lacks, tagged with `ref`, and answers with all of them. */
  async #writeMissing(ref: ClaimRef, prepared: PreparedProduce, found: Map<number, RecordAck>): Promise<StoredResponse> {
    const tag = `${refText(ref)}:`;
    const indices = prepared.records.flatMap((_, index) => (found.has(index) ? [] : [index]));
    const acks = indices.length > 0 ? await this.#events.produce(indices.map((index) => withTag(prepared.records[index]!, tag, index))) : [];
    indices.forEach((index, i) => found.set(index, acks[i]!));
    this.#options.afterWrite?.();
    return answerFrom(prepared, found);
  }

  /**
   * The key is held by another claim: answer from its events, or wait for them (409), or take it over.
   * `looks`: how many more times to look when the key changed hands meanwhile (a claim this replica had
   * not read yet); each new look starts from a claim that came later in the log.
   */
  async #resume(key: Key, print: string, prepared: PreparedProduce, looks = 2): Promise<StoredResponse & { replayed?: true }> {
    const held = this.#store.held(key.id);
    // Held a moment ago and now past the retention window: the key is new again.
    if (held === undefined) return this.#claimOrResume(key, print, prepared);
    const original = await this.#store.fingerprintOf(held.earlier?.[0] ?? held);
    if (original !== undefined && original !== print) throw new IdempotencyKeyReusedError();
    const topic = prepared.records[0]?.topic;
    const found = topic === undefined ? new Map<number, RecordAck>() : await this.#store.written(topic, held);
    if (found.size === prepared.records.length) return { ...answerFrom(prepared, found), replayed: true };
    const lookAgain = (): Promise<StoredResponse & { replayed?: true }> => {
      if (looks === 0) throw new IdempotencyKeyInUseError();
      return this.#resume(key, print, prepared, looks - 1);
    };
    // Taken over while its events were looked for: look for the new claim's.
    const now = this.#store.current(key.id);
    if (now === undefined || !sameRef(now, held)) return lookAgain();
    // Some events are not there. Their writer may still be at it, unless that is this process (the key is
    // not in flight here: this request holds it) or its lease ended.
    if (held.owner !== this.#options.owner && !this.#store.expired(held)) throw new IdempotencyKeyInUseError();
    const ref = await this.#claims.claim({ scope: key.scope, id: key.id, fingerprint: print, replaces: { partition: held.partition, offset: held.offset, slot: held.slot } });
    if (ref !== undefined) return this.#writeMissing(ref, prepared, found);
    // Another claim took it over first, one this replica had not read yet; it has now (a claim is settled once
    // everything before it was read).
    return lookAgain();
  }
}
