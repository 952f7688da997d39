import { bytesEqual, hash, toHex } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';

export const CLUSTER_LOCK_PCR = 15;

/** The two TPM operations the lock needs (sha256 bank). The engine implements them; tests may use tpm2-tools on swtpm. */
export interface PcrLockTpm {
  readPcrSha256(index: number): Promise<Uint8Array>;
  /** TPM2_PCR_Event: extends every bank with H_bank(data). */
  pcrEvent(index: number, data: Uint8Array): Promise<void>;
}

/**
 * The cluster ID as the key service releases it (64 lowercase hex digits) -> the 32 bytes
 * that are extended. The key service computes the lock from the same raw bytes
 * (keyservice/derive.ts clusterLockPcr), so hashing the hex text instead would give a lock
 * the service never recognises.
 */
export function clusterIdBytes(clusterIdHex: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(clusterIdHex)) fail('INVALID_ARGUMENT', `cluster ID must be 64 lowercase hex digits (as the key service releases it), got "${clusterIdHex}"`);
  return Buffer.from(clusterIdHex, 'hex');
}

/** PCR 15 after the lock: H(0^32 || H(clusterID bytes)), SHA-256 bank. */
export function lockedPcr15(clusterIdHex: string): Buffer {
  return hash('sha256', Buffer.alloc(32), hash('sha256', clusterIdBytes(clusterIdHex)));
}

export type LockState = { kind: 'unlocked' } | { kind: 'locked'; clusterId: string } | { kind: 'foreign'; value: string };

/** What PCR 15 says about this boot: zero (fresh boot), our cluster (agent restarted after locking), or something else. */
export async function readLockState(tpm: PcrLockTpm, clusterId?: string): Promise<LockState> {
  const v = await tpm.readPcrSha256(CLUSTER_LOCK_PCR);
  if (v.every((b) => b === 0)) return { kind: 'unlocked' };
  if (clusterId !== undefined && bytesEqual(v, lockedPcr15(clusterId))) return { kind: 'locked', clusterId };
  return { kind: 'foreign', value: toHex(v) };
}

/**
 * Binds this boot to the cluster, exactly once: extends only when PCR 15 is zero, then
 * checks the TPM's result. Already locked to this cluster: nothing to do (a restart of the
 * agent in the same boot). Any other value: CLUSTER_LOCK_MISMATCH, never a second extend.
 */
export async function lockToCluster(tpm: PcrLockTpm, clusterId: string): Promise<'extended' | 'already-locked'> {
  const data = clusterIdBytes(clusterId);
  const before = await readLockState(tpm, clusterId);
  if (before.kind === 'locked') return 'already-locked';
  if (before.kind === 'foreign') fail('CLUSTER_LOCK_MISMATCH', `PCR 15 is ${before.value}, not zero and not cluster ${clusterId}'s lock; not extending again`);
  await tpm.pcrEvent(CLUSTER_LOCK_PCR, data);
  const after = await tpm.readPcrSha256(CLUSTER_LOCK_PCR);
  if (!bytesEqual(after, lockedPcr15(clusterId))) {
    fail('CLUSTER_LOCK_MISMATCH', `PCR 15 is ${toHex(after)} after the lock, expected ${toHex(lockedPcr15(clusterId))} (another extend raced)`);
  }
  return 'extended';
}
