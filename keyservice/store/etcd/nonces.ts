import { randomBytes } from 'node:crypto';
import type { Namespace } from 'etcd3';
import { SextantError } from '../../../lib/errors.js';
import type { NonceBook } from '../store.js';
import { guard } from './client.js';
import type { LeaseBuckets } from './leases.js';

/**
 * Single-use nonces across all replicas: `nonce/<hex>` = {exp}, created on a lease that
 * outlives the TTL by a grace period (a late or repeated nonce is told apart from one never
 * issued). A take is one transaction on the key's version: version 1 (issued, never used)
 * -> write "used" in the same transaction; anything else -> read why. etcd serializes
 * transactions, so of two takes of one nonce at two replicas exactly one sees version 1.
 */
export class EtcdNonceBook implements NonceBook {
  constructor(
    private readonly ns: Namespace,
    private readonly leases: LeaseBuckets,
    private readonly clock: () => number,
    readonly ttlMs: number,
    private readonly graceMs = 10 * 60_000,
  ) {}

  async issue(): Promise<Buffer> {
    const nonce = randomBytes(32);
    const exp = this.clock() + this.ttlMs;
    const lease = await this.leases.until(exp + this.graceMs);
    await guard('issue a nonce', () => this.ns.put(this.key(nonce)).value(JSON.stringify({ exp })).lease(lease).exec());
    return nonce;
  }

  async take(nonce: Uint8Array): Promise<SextantError | undefined> {
    if (nonce.length !== 32) return new SextantError({ code: 'NONCE_UNKNOWN', message: 'nonce was not issued by this key service' });
    const k = this.key(nonce);
    const r = await guard('use a nonce', () =>
      this.ns
        .if(k, 'Version', '==', 1)
        .then(this.ns.get(k), this.ns.put(k).value(JSON.stringify({ used: true })).ignoreLease())
        .else(this.ns.get(k))
        .commit(),
    );
    const kv = r.responses[0]?.response_range?.kvs?.[0];
    if (!kv) return new SextantError({ code: 'NONCE_UNKNOWN', message: 'nonce was not issued by this key service' });
    if (!r.succeeded) return new SextantError({ code: 'NONCE_REPLAYED', message: 'nonce was already used' });
    // Fail closed on a value this book did not write: no expiry read, no nonce (it was a
    // SyntaxError, a 500 without an audit record; `{}` passed, as `now > undefined` is false).
    const exp = expiryOf(kv.value);
    if (exp === undefined) return new SextantError({ code: 'NONCE_UNKNOWN', message: 'nonce was not issued by this key service' });
    if (this.clock() > exp) return new SextantError({ code: 'NONCE_EXPIRED', message: `nonce expired (valid ${this.ttlMs / 1000} s)` });
    return undefined;
  }

  private key(nonce: Uint8Array): string {
    return 'nonce/' + Buffer.from(nonce).toString('hex');
  }
}

/** The `exp` of a stored `{exp}`, or undefined when the value is anything else. */
function expiryOf(v: Buffer): number | undefined {
  try {
    const j = JSON.parse(v.toString('utf8')) as { exp?: unknown } | null;
    return typeof j?.exp === 'number' && Number.isFinite(j.exp) ? j.exp : undefined;
  } catch {
    return undefined;
  }
}
