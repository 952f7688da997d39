import { randomBytes } from 'node:crypto';
import type { Namespace } from 'etcd3';
import type { SessionBook, SessionBookSpec } from '../store.js';
import { guard } from './client.js';
import type { LeaseBuckets } from './leases.js';
import { openValue, sealValue } from './sealed-value.js';

/**
 * Sessions in etcd, sealed (sealed-value.ts) under a key derived from the master secret:
 * `session/<kind>/<id>` = seal({exp, v}), on a lease that outlives `exp`. Any replica that
 * holds the master secret opens any session, so round 2 may go to another replica than
 * round 1. `take` is one DeleteRange with prev_kv: of two concurrent takes etcd serializes
 * the deletes and only one gets the value back.
 *
 * No count cap here (the local book's maxEntries): etcd's space quota and the per-client
 * rate limit in front bound the writes, and the leases forget what expired.
 */
const ID_RE = /^[0-9a-f]{32}$/;

export class EtcdSessionBook<T> implements SessionBook<T> {
  constructor(
    private readonly ns: Namespace,
    private readonly spec: SessionBookSpec<T>,
    private readonly sealKey: Buffer,
    private readonly leases: LeaseBuckets,
    private readonly clock: () => number,
  ) {}

  private key(id: string): string {
    return `session/${this.spec.name}/${id}`;
  }

  async open(value: T): Promise<{ id: string; expiresAt: number }> {
    const id = randomBytes(16).toString('hex');
    const expiresAt = this.clock() + this.spec.ttlMs;
    const plain = Buffer.from(JSON.stringify({ exp: expiresAt, v: this.spec.codec.encode(value).toString('base64') }));
    const lease = await this.leases.until(expiresAt);
    await guard('store a session', () => this.ns.put(this.key(id)).value(sealValue(this.sealKey, this.key(id), plain)).lease(lease).exec());
    return { id, expiresAt };
  }

  async take(id: string): Promise<T | undefined> {
    if (!ID_RE.test(id)) return undefined;
    const prev = await guard('take a session', () => this.ns.delete().key(this.key(id)).getPrevious());
    return prev.length ? this.decode(id, prev[0].value) : undefined;
  }

  async get(id: string): Promise<T | undefined> {
    if (!ID_RE.test(id)) return undefined;
    const raw = await guard('read a session', () => this.ns.get(this.key(id)).buffer());
    return raw ? this.decode(id, raw) : undefined;
  }

  private decode(id: string, sealed: Buffer): T | undefined {
    const plain = openValue(this.sealKey, this.key(id), sealed);
    if (!plain) return undefined;
    const j = JSON.parse(plain.toString('utf8')) as { exp: number; v: string };
    if (j.exp < this.clock()) return undefined;
    return this.spec.codec.decode(Buffer.from(j.v, 'base64'));
  }
}
