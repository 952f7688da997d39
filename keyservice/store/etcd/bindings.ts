import type { Namespace } from 'etcd3';
import { SextantError } from '../../../lib/errors.js';
import { UUID_RE } from '../../../protocol/validate.js';
import { broken, checkStoredBinding, RevisionedBindingStore } from '../../binding/revisioned-store.js';
import type { DiskBinding } from '../../binding/store.js';
import { guard } from './client.js';

/**
 * Disk-to-node bindings in etcd, laid out like the state directory's: one key per revision,
 * `binding/<uuid>/<revision, 10 digits>` = the DiskBinding JSON, never rewritten. Creating
 * revision N+1 is a transaction "create revision of that key == 0 -> put": the same
 * compare-and-set as the local store's link(2), across every replica.
 */
export class EtcdBindingStore extends RevisionedBindingStore {
  constructor(
    private readonly ns: Namespace,
    now: () => Date = () => new Date(),
  ) {
    super(now);
  }

  async get(diskUuid: string): Promise<DiskBinding | undefined> {
    const prefix = this.prefix(diskUuid);
    const kvs = await guard('read a disk binding', () => this.ns.getAll().prefix(prefix).sort('Key', 'Descend').limit(1).exec());
    const kv = kvs.kvs[0];
    return kv ? this.parse(kv.key.toString('utf8'), kv.value) : undefined;
  }

  async list(): Promise<DiskBinding[]> {
    const r = await guard('list disk bindings', () => this.ns.getAll().prefix('binding/').sort('Key', 'Ascend').exec());
    const last = new Map<string, DiskBinding>();
    // Ascending keys: each disk's highest revision comes last.
    for (const kv of r.kvs) {
      const b = this.parse(kv.key.toString('utf8'), kv.value);
      last.set(b.diskUuid, b);
    }
    return [...last.values()];
  }

  protected async tryCreate(b: DiskBinding): Promise<boolean> {
    const key = this.prefix(b.diskUuid) + String(b.revision).padStart(10, '0');
    const r = await guard('write a disk binding', () => this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(JSON.stringify(b))).commit());
    return r.succeeded;
  }

  private prefix(diskUuid: string): string {
    if (!UUID_RE.test(diskUuid)) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `not a lowercase disk UUID: "${diskUuid.slice(0, 80)}"` });
    return `binding/${diskUuid}/`;
  }

  private parse(key: string, value: Buffer): DiskBinding {
    // The namespace's prefix is stripped from keys it returns.
    const m = /^binding\/([0-9a-f-]{36})\/(\d{10})$/.exec(key);
    if (!m) throw broken(`etcd key ${key}`, 'not a binding revision');
    let b: Partial<DiskBinding>;
    try {
      b = JSON.parse(value.toString('utf8')) as Partial<DiskBinding>;
    } catch {
      throw broken(`etcd key ${key}`, 'not JSON');
    }
    return checkStoredBinding(b, m[1], Number(m[2]), `etcd key ${key}`);
  }
}
