import { hash } from 'node:crypto';

/** Where one claim is: its claims record and its slot in that record's list. */
export interface ClaimRef {
  partition: number;
  offset: bigint;
  slot: number;
}

/** What a replica knows of a key: its current claim, and since when the key is held. */
export interface HeldKey extends ClaimRef {
  /** Claims the current one replaced (takeovers, rare), oldest first: events written under them count too. */
  earlier?: ClaimRef[];
  /** Epoch ms of the first claim: the retention window counts from it. */
  first: number;
  /** Epoch ms of the current claim, for its owner's lease. */
  at: number;
  /** The process that wrote the current claim. */
  owner: string;
}

/** Characters of a key id: 22 base64url characters, the first 132 bits of SHA-256. */
const ID_LENGTH = 22;

/**
 * A key's id: its scope (route, principal, key) as the first 22 base64url
 * characters of its SHA-256. What the table, the in-flight set and claims
 * records (`d`) hold instead of scopes of any length; a hash, as a scope names
 * its principal and a crafted key must not collide with another principal's.
 */
export function keyId(scope: string): string {
  return hash('sha256', scope, 'base64url').slice(0, ID_LENGTH);
}

const BASE64URL = new Int8Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) BASE64URL[c.charCodeAt(0)] = i;

/** Whether `id` reads as a key id (a claims record's `d` entries come from other processes). */
export function isKeyId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length !== ID_LENGTH) return false;
  for (let i = 0; i < ID_LENGTH; i++) if ((BASE64URL[id.charCodeAt(i)] ?? -1) < 0) return false;
  return true;
}

/** The first 128 bits of `id` into `out` as four 32-bit words (no allocation: one lookup per request). */
function idWords(id: string, out: Uint32Array): void {
  let acc = 0;
  let bits = 0;
  let word = 0;
  for (let i = 0; word < 4; i++) {
    acc = acc * 64 + BASE64URL[id.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 32) {
      const scale = 2 ** (bits - 32);
      const high = Math.floor(acc / scale);
      out[word++] = high;
      acc -= high * scale;
      bits -= 32;
    }
  }
}

const INITIAL_CAPACITY = 1024;

/**
 * The keys a replica holds within the retention window, by id: a busy ingress
 * holds a million of them over 24 h. Kept in typed arrays, not a Map of scope
 * strings and objects: the garbage collector has nothing to walk, and an
 * entry costs ~60 bytes off the heap. Entries sit in a ring in the order their
 * keys were first claimed (log order), so forgetting expired keys pops the
 * oldest end instead of walking every key; an open-addressing index (linear
 * probing, backward-shift deletion) finds an id's entry.
 */
export class ClaimTable {
  #capacity = 0;
  /** Sequence numbers of the oldest entry kept and of the next one; an entry's place is its number & (capacity - 1). */
  #tail = 0;
  #head = 0;
  #words = new Uint32Array(0);
  #first = new Float64Array(0);
  #at = new Float64Array(0);
  #partition = new Int32Array(0);
  #offset = new BigInt64Array(0);
  #slot = new Int32Array(0);
  #owner = new Int32Array(0);
  /** 0: the entry was dropped out of order (its key claimed anew after the window) and waits for the ring's end. */
  #live = new Uint8Array(0);
  /**
   * Slots of two: place + 1 of the entry (0: empty) and the entry's first word, so a probe passing other keys'
   * slots, or finding none (a new key: nearly every request), reads only the index, not the entries; the first word,
   * whose low bits are the slot the entry's probe starts from, so growth and removal re-place entries without reading
   * them (12 or more of its bits are not implied by the slot at up to a million entries). Twice as many slots as the
   * ring has entries, so probes stay short.
   */
  #index = new Int32Array(0);
  #slots = 0;
  /** By sequence number: the rare takeovers' earlier claims. */
  readonly #earlier = new Map<number, ClaimRef[]>();
  readonly #owners: string[] = [];
  readonly #ownerIds = new Map<string, number>();
  readonly #probe = new Uint32Array(4);

  constructor() {
    this.#resize(INITIAL_CAPACITY);
  }

  /** Entries kept (expired ones included until expire() pops them). */
  get size(): number {
    return this.#head - this.#tail;
  }

  /** Epoch ms of the first claim of `id`'s key, or undefined when none is kept. */
  first(id: string): number | undefined {
    const place = this.#find(id);
    return place < 0 ? undefined : this.#first[place];
  }

  /** `id`'s entry as an object (a copy: the table's entry changes on a takeover). */
  get(id: string): HeldKey | undefined {
    const place = this.#find(id);
    return place < 0 ? undefined : this.#held(place);
  }

  /** Whether `ref` is the current claim of `id`'s key. */
  holds(id: string, ref: ClaimRef): boolean {
    const place = this.#find(id);
    return place >= 0 && this.#partition[place] === ref.partition && this.#slot[place] === ref.slot && this.#offset[place] === ref.offset;
  }

  /**
   * Applies one claim of `id`'s key, in log order (the rules are applyClaims's): a key not kept or held
   * longer than `retentionMs` goes to the claim; a takeover (`replaces`) takes it only from the claim it names.
   */
  apply(id: string, ref: ClaimRef, at: number, owner: string, retentionMs: number, replaces?: ClaimRef): void {
    let place = this.#find(id);
    if (place >= 0 && at - this.#first[place]! > retentionMs) {
      this.#drop(place);
      place = -1;
    }
    if (place < 0) {
      this.#insert(ref, at, owner);
      return;
    }
    if (replaces === undefined || this.#partition[place] !== replaces.partition || this.#slot[place] !== replaces.slot || this.#offset[place] !== replaces.offset) return;
    const seq = this.#sequenceAt(place);
    this.#earlier.set(seq, [...(this.#earlier.get(seq) ?? []), { partition: this.#partition[place]!, offset: this.#offset[place]!, slot: this.#slot[place]! }]);
    this.#set(place, ref, this.#first[place]!, at, owner);
  }

  /** Forgets keys first claimed before `oldest` (epoch ms), from the ring's oldest end: no walk over the others. */
  expire(oldest: number): void {
    while (this.#tail < this.#head) {
      const place = this.#tail & (this.#capacity - 1);
      if (this.#live[place] === 1) {
        if (this.#first[place]! >= oldest) return;
        this.#unindex(place);
      }
      this.#earlier.delete(this.#tail);
      this.#tail++;
    }
  }

  #held(place: number): HeldKey {
    const held: HeldKey = {
      partition: this.#partition[place]!,
      offset: this.#offset[place]!,
      slot: this.#slot[place]!,
      first: this.#first[place]!,
      at: this.#at[place]!,
      owner: this.#owners[this.#owner[place]!]!,
    };
    const earlier = this.#earlier.get(this.#sequenceAt(place));
    if (earlier !== undefined) held.earlier = earlier.map((r) => ({ ...r }));
    return held;
  }

  /** The sequence number of the entry at `place` (between tail and head). */
  #sequenceAt(place: number): number {
    return this.#tail + ((place - this.#tail) & (this.#capacity - 1));
  }

  #set(place: number, ref: ClaimRef, first: number, at: number, owner: string): void {
    this.#partition[place] = ref.partition;
    this.#offset[place] = ref.offset;
    this.#slot[place] = ref.slot;
    this.#first[place] = first;
    this.#at[place] = at;
    let ownerId = this.#ownerIds.get(owner);
    if (ownerId === undefined) {
      ownerId = this.#owners.push(owner) - 1;
      this.#ownerIds.set(owner, ownerId);
    }
    this.#owner[place] = ownerId;
  }

  /** A new entry for the id last looked up (#probe), at the ring's newest end. */
  #insert(ref: ClaimRef, at: number, owner: string): void {
    if (this.#head - this.#tail === this.#capacity) this.#resize(this.#capacity * 2);
    const place = this.#head & (this.#capacity - 1);
    this.#head++;
    this.#words.set(this.#probe, place * 4);
    this.#live[place] = 1;
    this.#set(place, ref, at, at, owner);
    this.#addIndex(place);
  }

  /** Drops the entry at `place` out of order: unindexed now, its ring slot freed when the oldest end reaches it. */
  #drop(place: number): void {
    this.#unindex(place);
    this.#live[place] = 0;
    this.#earlier.delete(this.#sequenceAt(place));
  }

  /** The place of `id`'s entry, or -1; leaves `id`'s words in #probe for #insert. */
  #find(id: string): number {
    const probe = this.#probe;
    idWords(id, probe);
    const mask = this.#slots - 1;
    const index = this.#index;
    const words = this.#words;
    const tag = probe[0]! | 0;
    for (let i = tag & mask; ; i = (i + 1) & mask) {
      const entry = index[i * 2]!;
      if (entry === 0) return -1;
      if (index[i * 2 + 1] !== tag) continue;
      const w = (entry - 1) * 4;
      if (words[w + 1] === probe[1] && words[w + 2] === probe[2] && words[w + 3] === probe[3]) return entry - 1;
    }
  }

  #addIndex(place: number): void {
    this.#indexAt(place, this.#words[place * 4]! | 0);
  }

  /** Indexes the entry at `place` whose first word is `tag`. */
  #indexAt(place: number, tag: number): void {
    const mask = this.#slots - 1;
    let i = tag & mask;
    while (this.#index[i * 2] !== 0) i = (i + 1) & mask;
    this.#index[i * 2] = place + 1;
    this.#index[i * 2 + 1] = tag;
  }

  /** Removes `place` from the index, shifting back the entries of its probe run (no tombstones). */
  #unindex(place: number): void {
    const index = this.#index;
    const mask = this.#slots - 1;
    let i = this.#words[place * 4]! & mask;
    while (index[i * 2] !== place + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; index[j * 2] !== 0; j = (j + 1) & mask) {
      const home = index[j * 2 + 1]! & mask;
      // The entry at j may move to the hole at i when its home is not cyclically within (i, j].
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        index[i * 2] = index[j * 2]!;
        index[i * 2 + 1] = index[j * 2 + 1]!;
        i = j;
      }
    }
    index[i * 2] = 0;
  }

  /** A ring of `capacity` entries (a power of two) holding the current ones under the same sequence numbers, and its index. */
  #resize(capacity: number): void {
    const old = {
      capacity: this.#capacity,
      words: this.#words,
      first: this.#first,
      at: this.#at,
      partition: this.#partition,
      offset: this.#offset,
      slot: this.#slot,
      owner: this.#owner,
      live: this.#live,
      index: this.#index,
    };
    this.#capacity = capacity;
    this.#words = new Uint32Array(capacity * 4);
    this.#first = new Float64Array(capacity);
    this.#at = new Float64Array(capacity);
    this.#partition = new Int32Array(capacity);
    this.#offset = new BigInt64Array(capacity);
    this.#slot = new Int32Array(capacity);
    this.#owner = new Int32Array(capacity);
    this.#live = new Uint8Array(capacity);
    this.#slots = capacity * 2;
    this.#index = new Int32Array(this.#slots * 2);
    // The kept entries in runs that wrap in neither ring (at most three), each array copied as a block: an entry at a
    // time read a BigInt out of the offsets for each of up to a million entries.
    for (let seq = this.#tail; seq < this.#head;) {
      const from = seq & (old.capacity - 1);
      const to = seq & (capacity - 1);
      const n = Math.min(this.#head - seq, old.capacity - from, capacity - to);
      this.#words.set(old.words.subarray(from * 4, (from + n) * 4), to * 4);
      this.#first.set(old.first.subarray(from, from + n), to);
      this.#at.set(old.at.subarray(from, from + n), to);
      this.#partition.set(old.partition.subarray(from, from + n), to);
      this.#offset.set(old.offset.subarray(from, from + n), to);
      this.#slot.set(old.slot.subarray(from, from + n), to);
      this.#owner.set(old.owner.subarray(from, from + n), to);
      this.#live.set(old.live.subarray(from, from + n), to);
      seq += n;
    }
    // Re-indexed in the old index's order, from the first words it holds: its slots read in sequence, the new index
    // written nearly so (an entry's new slot is its old one or half the new index further), no entry read.
    for (let i = 0; i < old.index.length; i += 2) {
      const entry = old.index[i]!;
      if (entry === 0) continue;
      const seq = this.#tail + ((entry - 1 - this.#tail) & (old.capacity - 1));
      this.#indexAt(seq & (capacity - 1), old.index[i + 1]!);
    }
  }
}
