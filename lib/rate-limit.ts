/** Milliseconds since the epoch (injectable for tests). */
type Clock = () => number;

/** Per-client token bucket: `burst` requests at once, refilled at `perSecond`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly clock: Clock = Date.now,
  ) {}

  /** True when the client may proceed (and takes one token). */
  take(client: string): boolean {
    const now = this.clock();
    const b = this.buckets.get(client) ?? { tokens: this.burst, at: now };
    // max(0, ...): a clock that steps back must not drain the bucket.
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.perSecond);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(client, b);
    if (this.buckets.size > 10_000) this.prune(now);
    return ok;
  }

  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
  }
}
