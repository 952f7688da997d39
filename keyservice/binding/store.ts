import type { KeyObject } from 'node:crypto';
import { ekSpkiSha256 } from '../../attestation/tpm/ek-key.js';

/**
 * Which node (TPM) a disk UUID belongs to. The first release of a disk's key binds the UUID
 * to the EK that attested; every later release must come from that EK until an admin
 * rebinds it (docs/disk-binding.md).
 *
 * The store is an interface because it is shared state: today a state-dir implementation
 * (local-store.ts), later etcd. Every write is a compare-and-set on `revision` (etcd: a txn
 * on the key's value), so two nodes asking for the same new UUID at once get exactly one
 * winner, and an admin's rebind cannot silently overwrite a binding made meanwhile.
 */

/** How a revision came to be (kept in the revision itself: the binding's own history). */
export type BindingCause = 'first-release' | 'admin-rebind' | 'admin-unbind';

export interface DiskBinding {
  diskUuid: string;
  /** 1 for the first binding, +1 per change. */
  revision: number;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo of the EK; null = unbound by an admin. */
  ekPublicSha256: string | null;
  /** The node name asked for at the first release (informational; only the EK is compared). */
  nodeName?: string;
  cause: BindingCause;
  /** Free text the admin gave with a rebind. */
  reason?: string;
  time: string;
}

export interface BindingMeta {
  cause: BindingCause;
  nodeName?: string;
  reason?: string;
}

export interface DiskBindingStore {
  /** The current binding, or undefined if the UUID was never bound. */
  get(diskUuid: string): Promise<DiskBinding | undefined>;
  /**
   * Binds the UUID to `ek` unless it is bound already (to anyone): returns the binding that
   * holds afterwards, durable before this resolves. `created` says whether this call made it.
   * An admin-unbound UUID (ekPublicSha256 null) counts as absent.
   */
  bindIfAbsent(diskUuid: string, ek: string, meta: Omit<BindingMeta, 'cause'>): Promise<{ binding: DiskBinding; created: boolean }>;
  /**
   * Sets the binding to `to` (null = unbind) if its revision is still `expectedRevision`
   * (0 = never bound); otherwise DISK_BINDING_CONFLICT and nothing changes.
   */
  rebind(diskUuid: string, expectedRevision: number, to: string | null, meta: BindingMeta): Promise<DiskBinding>;
  /** Every bound (or unbound-by-admin) UUID, sorted by UUID. */
  list(): Promise<DiskBinding[]>;
}

/**
 * The node identity a disk is bound to: SHA-256 of the EK's public key (DER SPKI), not of
 * its certificate. Credential activation proves possession of exactly this key; the key is
 * derived from the TPM's endorsement seed, so it survives TPM2_Clear and a re-issued or
 * re-provisioned EK certificate, and changes only with a new TPM or TPM2_ChangeEPS.
 */
export const ekPublicSha256: (ekKey: KeyObject) => string = ekSpkiSha256;

export const EK_SHA256_RE = /^[0-9a-f]{64}$/;
