import { deriveStoreSealKey } from '../../derive.js';
import type { BindingsAndAudit, KeyServiceStore, SessionBookSpec } from '../store.js';
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

type EtcdConnection = Awaited<ReturnType<typeof connectEtcd>>;
export type EtcdKeyServiceStore = KeyServiceStore & { readonly etcd: EtcdConnection };

/** The bindings and the audit chain in etcd (the admin commands' part; no secret needed): connects and reads the audit head. */
export async function openEtcdBindingsAndAudit(c: EtcdStoreConfig, clock: () => number = Date.now): Promise<BindingsAndAudit & { readonly etcd: EtcdConnection }> {
  const etcd = await connectEtcd(c);
  try {
    const audit = await new EtcdAuditLog(etcd.ns, { now: () => new Date(clock()) }).open();
    return {
      kind: 'etcd',
      etcd,
      bindings: new EtcdBindingStore(etcd.ns, () => new Date(clock())),
      audit,
      auditLocation: `etcd ${c.endpoints.join(',')} ${c.prefix ?? 'sextant/'}audit/`,
      close: async () => {
        await audit.close();
        etcd.client.close();
      },
    };
  } catch (e) {
    etcd.client.close();
    throw e;
  }
}

/** Connects and reads the audit head: a replica that cannot reach a quorum does not start (STORE_UNAVAILABLE). */
export async function openEtcdStore(c: EtcdStoreConfig, o: EtcdStoreOptions): Promise<EtcdKeyServiceStore> {
  const clock = o.clock ?? Date.now;
  const base = await openEtcdBindingsAndAudit(c, clock);
  const { ns } = base.etcd;
  const leases = new LeaseBuckets(ns, clock);
  const sealKey = deriveStoreSealKey(o.masterSecret, o.salt);
  const measurements = new EtcdMeasurementsChannel(ns);
  return {
    ...base,
    nonces: new EtcdNonceBook(ns, leases, clock, o.nonceTtlMs),
    sessions: <T>(spec: SessionBookSpec<T>) => new EtcdSessionBook<T>(ns, spec, sealKey, leases, clock),
    measurements,
    close: async () => {
      await measurements.close();
      sealKey.fill(0);
      await base.close();
    },
  };
}
