import { SextantError } from '../../lib/errors.js';
import { EK_SHA256_RE, type BindingMeta, type DiskBinding, type DiskBindingStore } from './store.js';

/**
 * The compare-and-set both binding stores share: the current binding is a disk's highest
 * revision, and a change is "create revision N+1 if it does not exist yet" (a hard link in
 * the state directory, an etcd transaction on the key's create revision). Of two writers
 * racing for one revision exactly one creates it; the other reads again.
 */

const MAX_CAS_TRIES = 16;

export abstract class RevisionedBindingStore implements DiskBindingStore {
  constructor(protected readonly now: () => Date) {}

  abstract get(diskUuid: string): Promise<DiskBinding | undefined>;
  abstract list(): Promise<DiskBinding[]>;
  /** Creates `b.revision` for `b.diskUuid`, durable when it resolves true; false when that revision exists. */
  protected abstract tryCreate(b: DiskBinding): Promise<boolean>;

  async bindIfAbsent(diskUuid: string, ek: string, meta: Omit<BindingMeta, 'cause'>): Promise<{ binding: DiskBinding; created: boolean }> {
    checkEk(ek);
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const cur = await this.get(diskUuid);
      if (cur && cur.ekPublicSha256 !== null) return { binding: cur, created: false };
      const made = await this.create(diskUuid, (cur?.revision ?? 0) + 1, ek, { ...meta, cause: 'first-release' });
      if (made) return { binding: made, created: true };
    }
    throw conflict(diskUuid);
  }

  async rebind(diskUuid: string, expectedRevision: number, to: string | null, meta: BindingMeta): Promise<DiskBinding> {
    if (to !== null) checkEk(to);
    const cur = await this.get(diskUuid);
    if ((cur?.revision ?? 0) !== expectedRevision) throw conflict(diskUuid, expectedRevision, cur?.revision ?? 0);
    const made = await this.create(diskUuid, expectedRevision + 1, to, meta);
    if (!made) throw conflict(diskUuid);
    return made;
  }

  private async create(diskUuid: string, revision: number, ek: string | null, meta: BindingMeta): Promise<DiskBinding | undefined> {
    const binding: DiskBinding = {
      diskUuid,
      revision,
      ekPublicSha256: ek,
      ...(meta.nodeName !== undefined && { nodeName: meta.nodeName }),
      cause: meta.cause,
      ...(meta.reason !== undefined && { reason: meta.reason }),
      time: this.now().toISOString(),
    };
    return (await this.tryCreate(binding)) ? binding : undefined;
  }
}

/** A stored revision read back: it must name its own disk and revision and an EK hash (or null). */
export function checkStoredBinding(b: Partial<DiskBinding>, diskUuid: string, revision: number, where: string): DiskBinding {
  if (b.diskUuid !== diskUuid || b.revision !== revision) throw broken(where, 'names another disk or revision than its path');
  if (b.ekPublicSha256 !== null && !(typeof b.ekPublicSha256 === 'string' && EK_SHA256_RE.test(b.ekPublicSha256))) throw broken(where, 'no EK hash');
  return b as DiskBinding;
}

export function broken(where: string, why: string): SextantError {
  return new SextantError({ code: 'DISK_BINDING_BROKEN', message: `${where}: ${why}` });
}

function checkEk(ek: string): void {
  if (!EK_SHA256_RE.test(ek)) throw new SextantError({ code: 'INVALID_ARGUMENT', message: 'an EK identity is 64 lowercase hex digits (SHA-256 of the EK public key)' });
}

function conflict(diskUuid: string, expected?: number, actual?: number): SextantError {
  const detail = expected === undefined ? 'it changed meanwhile' : `expected revision ${expected}, it is at ${actual}`;
  return new SextantError({ code: 'DISK_BINDING_CONFLICT', message: `the binding of disk ${diskUuid} changed concurrently (${detail}); read it again and retry` });
}
