import { SextantError } from '../../lib/errors.js';
import { toHex } from '../../lib/bytes.js';
import type { Role } from '../../protocol/messages.js';
import { clusterLockPcr } from '../derive.js';

const ZERO = '0'.repeat(64);

/** What PCR 15 said about the node when its attestation was accepted (audited). */
export type LockObservation = 'unlocked' | 'locked-to-this-cluster';

/**
 * PCR 15 decides whether a node may join; the role comes from the node's state disk (blank
 * disk: join; sextant's LUKS2 header: rejoin). PCRs reset on every boot, so a joined node that
 * rebooted arrives with PCR 15 = 0 again, and one whose agent restarted after locking arrives
 * with this cluster's lock:
 *
 *   join    PCR 15 = 0                                     (else CLUSTER_LOCK_SET)
 *   rejoin  PCR 15 = 0 or H(0^32 || H(this cluster's ID))   (else CLUSTER_LOCK_MISMATCH)
 *
 * A join with the lock set is refused: a node bound to a cluster in this boot must not get a
 * second join ticket. Any other PCR 15 value means another cluster (or a forged extend).
 */
export function checkClusterLock(role: Role, pcr15: string, clusterId: Uint8Array): LockObservation {
  const ours = toHex(clusterLockPcr(clusterId));
  switch (role) {
    case 'join':
      if (pcr15 !== ZERO) {
        throw new SextantError({
          code: 'CLUSTER_LOCK_SET',
          message: pcr15 === ours ? 'PCR 15 already holds this cluster ID: ask for a rejoin, not a join' : 'PCR 15 is set: the node is bound to a cluster and cannot join as new',
        });
      }
      return 'unlocked';
    case 'rejoin':
      if (pcr15 === ZERO) return 'unlocked';
      if (pcr15 === ours) return 'locked-to-this-cluster';
      throw new SextantError({ code: 'CLUSTER_LOCK_MISMATCH', message: "PCR 15 holds another cluster's ID (neither zero nor this cluster's lock)" });
  }
}
