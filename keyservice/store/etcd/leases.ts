import type { Namespace } from 'etcd3';
import { guard } from './client.js';

/**
 * Leases shared by everything that expires in the same 10 s window: a lease grant is a raft
 * write of its own, so one per nonce or session would double the store's work. Keys carry
 * their exact expiry in their value; the lease only makes etcd forget them (at most one
 * window plus a margin late), so no replica has to sweep.
 */
export class LeaseBuckets {
  private readonly buckets = new Map<number, Promise<string>>();

  constructor(
    private readonly ns: Namespace,
    private readonly clock: () => number,
    private readonly windowMs = 10_000,
  ) {}

  /** A lease that lives at least until `untilMs`. */
  until(untilMs: number): Promise<string> {
    const b = Math.ceil(untilMs / this.windowMs);
    let p = this.buckets.get(b);
    if (!p) {
      const ttlSeconds = Math.max(1, Math.ceil((b * this.windowMs - this.clock()) / 1000)) + 2;
      p = guard('grant a lease', () => this.ns.lease(ttlSeconds, { autoKeepAlive: false }).grant());
      p.catch(() => this.buckets.delete(b));
      this.buckets.set(b, p);
      const now = Math.floor(this.clock() / this.windowMs);
      for (const k of this.buckets.keys()) if (k < now) this.buckets.delete(k);
    }
    return p;
  }
}
