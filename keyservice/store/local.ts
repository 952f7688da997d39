import { randomBytes } from 'node:crypto';
import { ExpiringMap } from '../../lib/expiring-map.js';
import { AuditLog } from '../audit/log.js';
import { lockAuditLog } from '../audit-writer-lock.js';
import { LocalBindingStore } from '../binding/local-store.js';
import { NonceStore } from '../nonce-store.js';
import type { BindingsAndAudit, KeyServiceStore, SessionBook, SessionBookSpec } from './store.js';

/**
 * The single-process store: sessions and nonces in memory, bindings and the audit log in the
 * state directory (one writer, audit-writer-lock.ts). A restart forgets half-done sessions
 * (the agent starts again with round 1) but nothing acknowledged: the audit log and the
 * bindings are fsynced before they are acknowledged.
 */

export class LocalSessionBook<T> implements SessionBook<T> {
  private readonly map: ExpiringMap<T>;

  constructor(
    private readonly spec: Pick<SessionBookSpec<T>, 'ttlMs' | 'maxEntries' | 'overflow' | 'full'>,
    clock: () => number,
  ) {
    this.map = new ExpiringMap({ ttlMs: spec.ttlMs, maxEntries: spec.maxEntries, overflow: spec.overflow, clock });
  }

  async open(value: T): Promise<{ id: string; expiresAt: number }> {
    const id = randomBytes(16).toString('hex');
    const expiresAt = this.map.set(id, value);
    if (expiresAt === false) throw this.spec.full();
    return { id, expiresAt };
  }

  async take(id: string): Promise<T | undefined> {
    return this.map.take(id);
  }

  async get(id: string): Promise<T | undefined> {
    return this.map.get(id);
  }
}

export interface LocalStoreOptions {
  stateDir: string;
  auditPath: string;
  nonceTtlMs: number;
  clock?: () => number;
}

/** The state directory's bindings and its audit log, holding the log's writer lock (one writer: `holder` names it). */
export async function openLocalBindingsAndAudit(o: { stateDir: string; auditPath: string; holder: string }): Promise<BindingsAndAudit> {
  const lock = await lockAuditLog(o.auditPath, o.holder);
  const audit = await AuditLog.open(o.auditPath).catch(async (e: unknown) => {
    await lock.release();
    throw e;
  });
  return {
    kind: 'local',
    bindings: LocalBindingStore.inStateDir(o.stateDir),
    audit,
    auditLocation: o.auditPath,
    close: async () => {
      await audit.close();
      await lock.release();
    },
  };
}

export async function openLocalStore(o: LocalStoreOptions): Promise<KeyServiceStore> {
  const clock = o.clock ?? Date.now;
  const base = await openLocalBindingsAndAudit({ stateDir: o.stateDir, auditPath: o.auditPath, holder: 'sextant keyservice' });
  return {
    ...base,
    nonces: new NonceStore({ ttlMs: o.nonceTtlMs, clock }),
    sessions: <T>(spec: SessionBookSpec<T>) => new LocalSessionBook<T>(spec, clock),
  };
}
