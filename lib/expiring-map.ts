/**
 * A bounded map whose entries expire a fixed time after they were set: the one shape of the
 * services' half-done sessions (key service attestation and confirm sessions, the node's
 * recovery sessions). Every entry gets the same TTL, so the map's insertion order is expiry
 * order and the expired entries are a prefix: a sweep costs O(entries expired), not a scan
 * of the whole map on every request (1.4 ms at a 100,000-entry cap).
 *
 * When full, the policy says what gives: `refuse` (set returns false: the caller answers
 * RATE_LIMITED, so a flood of openers cannot push out sessions in progress) or
 * `evict-oldest` (a release must never be refused for want of room: the oldest goes).
 */

export type OverflowPolicy = 'refuse' | 'evict-oldest';

export interface ExpiringMapOptions<V> {
  ttlMs: number;
  maxEntries: number;
  overflow: OverflowPolicy;
  clock?: () => number;
  /** Called for every entry that leaves the map without being taken (expired, evicted, cleared): wipe secrets here. */
  onDrop?: (value: V) => void;
}

interface Slot<V> {
  value: V;
  expiresAt: number;
}

export class ExpiringMap<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private readonly clock: () => number;

  constructor(private readonly o: ExpiringMapOptions<V>) {
    this.clock = o.clock ?? Date.now;
  }

  get ttlMs(): number {
    return this.o.ttlMs;
  }

  /** Adds an entry (a fresh key: ids are random); false when full under `refuse`. Returns its expiry. */
  set(key: string, value: V): number | false {
    this.sweep();
    if (this.slots.size >= this.o.maxEntries) {
      if (this.o.overflow === 'refuse') return false;
      const oldest = this.slots.keys().next().value!;
      this.drop(oldest);
    }
    const expiresAt = this.clock() + this.o.ttlMs;
    // Re-inserted at the end so insertion order stays expiry order.
    this.slots.delete(key);
    this.slots.set(key, { value, expiresAt });
    return expiresAt;
  }

  /** The live entry, or undefined (an expired one is dropped). */
  get(key: string): V | undefined {
    const s = this.slots.get(key);
    if (!s) return undefined;
    if (s.expiresAt < this.clock()) {
      this.drop(key);
      return undefined;
    }
    return s.value;
  }

  /** Removes and returns the live entry: single use. */
  take(key: string): V | undefined {
    const v = this.get(key);
    if (v !== undefined) this.slots.delete(key);
    return v;
  }

  /** Removes the entry, calling onDrop. */
  delete(key: string): void {
    if (this.slots.has(key)) this.drop(key);
  }

  get size(): number {
    return this.slots.size;
  }

  clear(): void {
    for (const k of [...this.slots.keys()]) this.drop(k);
  }

  private drop(key: string): void {
    const s = this.slots.get(key)!;
    this.slots.delete(key);
    this.o.onDrop?.(s.value);
  }

  private sweep(): void {
    const now = this.clock();
    for (const [k, s] of this.slots) {
      if (s.expiresAt >= now) break;
      this.drop(k);
    }
  }
}
