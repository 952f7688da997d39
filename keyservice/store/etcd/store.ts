import { deriveStoreSealKey } from '../../derive.js';
import type { KeyServiceStore, SessionBookSpec } from '../store.js';
import { EtcdAuditLog } from './audit.js';
import { EtcdBindingStore } from './bindings.js';
import { connectEtcd, type EtcdStoreConfig } from './client.js';
import { LeaseBuckets } from './leases.js';
import { EtcdMeasurementsChannel } from './measurements.js';
import { EtcdNonceBook } from './nonces.js';
import { EtcdSessionBook } from './sessions.js';

export interface EtcdStoreOptions {
  masterSecret: Buffer;
  salt: Buffer;
  nonceTtlMs: number;
  clock?: () => number;
}

export type EtcdKeyServiceStore = KeyServiceStore & { readonly etcd: Awaited<ReturnType<typeof connectEtcd>> };

/** Connects and reads the audit head: a replica that cannot reach a quorum does not start (STORE_UNAVAILABLE). */
export async function openEtcdStore(c: EtcdStoreConfig, o: EtcdStoreOptions): Promise<EtcdKeyServiceStore> {
  const clock = o.clock ?? Date.now;
  const etcd = await connectEtcd(c);
  const { ns } = etcd;
  try {
    const audit = await new EtcdAuditLog(ns, { now: () => new Date(clock()) }).open();
    const leases = new LeaseBuckets(ns, clock);
    const sealKey = deriveStoreSealKey(o.masterSecret, o.salt);
    const measurements = new EtcdMeasurementsChannel(ns);
    return {
      kind: 'etcd',
      etcd,
      nonces: new EtcdNonceBook(ns, leases, clock, o.nonceTtlMs),
      sessions: <T>(spec: SessionBookSpec<T>) => new EtcdSessionBook<T>(ns, spec, sealKey, leases, clock),
      bindings: new EtcdBindingStore(ns, () => new Date(clock())),
      audit,
      measurements,
      auditLocation: `etcd ${c.endpoints.join(',')} ${c.prefix ?? 'sextant/'}audit/`,
      close: async () => {
        await measurements.close();
        await audit.close();
        sealKey.fill(0);
        etcd.client.close();
      },
    };
  } catch (e) {
    etcd.client.close();
    throw e;
  }
}
