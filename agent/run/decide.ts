import { bytesEqual, toHex } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import type { Role } from '../../protocol/messages.js';
import { lockedPcr15 } from '../boot/cluster-lock.js';
import type { DiskVerdict } from '../disk/classify.js';
import type { AgentStatus, BootPath } from './status.js';

/**
 * Join or rejoin is read from the state disk, not from PCR 15: PCRs reset at every reboot,
 * so PCR 15 is zero at the start of every boot and cannot tell a new node from one that
 * rebooted. A blank disk (or sextant's own interrupted format) is a new node; sextant's
 * LUKS2 header is a node coming back. Anything else was refused before this point.
 */
export function pathFromDisk(v: Exclude<DiskVerdict, { kind: 'refuse' }>): { path: BootPath; found: NonNullable<AgentStatus['diskFound']> } {
  switch (v.kind) {
    case 'blank':
      return { path: 'join', found: 'blank' };
    case 'unfinished':
      return { path: 'join', found: 'sextant-unfinished' };
    case 'ours':
      return { path: 'rejoin', found: 'sextant' };
  }
}

/** PCR 15 at the time of attesting: zero, or set (by this agent earlier in this boot, or by someone else). */
export type Pcr15 = { kind: 'zero' } | { kind: 'set'; value: Uint8Array };

export function readPcr15(v: Uint8Array): Pcr15 {
  return v.every((b) => b === 0) ? { kind: 'zero' } : { kind: 'set', value: v };
}

/**
 * What to ask the key service for. PCR 15 zero: a join for a new node, a rejoin for ours.
 * PCR 15 set: the agent already locked this boot and restarted, so a rejoin (the key
 * service refuses a join from a locked node), but only if it holds the lock of the cluster
 * this boot already talked to (when known; otherwise `checkLockAfterAttest` checks it).
 */
export function keyServiceRole(path: BootPath, pcr15: Pcr15, knownClusterId?: string): Role {
  if (pcr15.kind === 'zero') return path === 'join' ? 'join' : 'rejoin';
  if (knownClusterId !== undefined) assertOwnLock(pcr15.value, knownClusterId);
  return 'rejoin';
}

/** PCR 15 was set before the agent attested: it must be this cluster's lock H(0^32 || H(clusterID)). */
export function assertOwnLock(pcr15: Uint8Array, clusterId: string): void {
  if (!bytesEqual(pcr15, lockedPcr15(clusterId))) {
    fail('CLUSTER_LOCK_MISMATCH', `PCR 15 is ${toHex(pcr15)} at start, not cluster ${clusterId}'s lock ${toHex(lockedPcr15(clusterId))}: something else extended it; refusing`);
  }
}
