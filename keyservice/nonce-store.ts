import { randomBytes } from 'node:crypto';
import { SextantError } from '../lib/errors.js';

/**
 * Single-use nonces with a short TTL. Used and expired nonces are remembered for a grace
 * period so a late or repeated one is told apart from one never issued; the store is
 * bounded so a flood of nonce requests cannot exhaust memory (the rate limit comes first).
 */

export type Clock = () => number;

interface Entry {
  expiresAt: number;
  used: boolean;
}

export interface NonceStoreOptions {
  ttlMs?: number;
  /** How long used/expired nonces are remembered after expiry. */
  graceMs?: number;
  maxEntries?: number;
  clock?: Clock;
  /** Source of nonces (tests and the benchmark replay recorded evidence). */
  random?: () => Buffer;
}

export class NonceStore {
  private readonly entries = new Map<string, Entry>();
  readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly random: () => Buffer;

  constructor(opts: NonceStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.graceMs = opts.graceMs ?? 10 * 60_000;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? (() => randomBytes(32));
  }

  issue(): Buffer {
    this.sweep();
    if (this.entries.size >= this.maxEntries) {
      throw new SextantError({ code: 'RATE_LIMITED', message: 'too many outstanding nonces; retry later' });
    }
    const nonce = this.random();
    this.entries.set(nonce.toString('hex'), { expiresAt: this.clock() + this.ttlMs, used: false });
    return nonce;
  }

  /** Marks the nonce used; throws NONCE_UNKNOWN / NONCE_EXPIRED / NONCE_REPLAYED. */
  consume(nonce: Uint8Array): void {
    const refused = this.take(nonce);
    if (refused) throw refused;
  }

  /**
   * Consumes the nonce now and returns why it is not acceptable (or undefined). The verifier
   * calls this before it checks anything else and throws the answer at its checkNonce stage:
   * a request refused at any stage, the quote's signature included, has used its nonce up.
   */
  take(nonce: Uint8Array): SextantError | undefined {
    try {
      this.mark(nonce);
      return undefined;
    } catch (e) {
      return e as SextantError;
    }
  }

  private mark(nonce: Uint8Array): void {
    const key = Buffer.from(nonce).toString('hex');
    const e = this.entries.get(key);
    if (!e) throw new SextantError({ code: 'NONCE_UNKNOWN', message: 'nonce was not issued by this key service' });
    if (e.used) throw new SextantError({ code: 'NONCE_REPLAYED', message: 'nonce was already used' });
    e.used = true;
    if (this.clock() > e.expiresAt) throw new SextantError({ code: 'NONCE_EXPIRED', message: `nonce expired (valid ${this.ttlMs / 1000} s)` });
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Forgets entries past their grace period. The map is in issue order and every entry gets
   * the same TTL, so the forgettable ones are a prefix: the sweep stops at the first entry
   * still remembered, and an issue costs O(entries forgotten), not O(entries) (with 100,000
   * outstanding nonces a full scan per unauthenticated nonce request was the slowest route).
   */
  private sweep(): void {
    const now = this.clock();
    for (const [k, e] of this.entries) {
      if (now <= e.expiresAt + this.graceMs) break;
      this.entries.delete(k);
    }
  }
}
