import { SextantError } from '../../lib/errors.js';
import { toHex } from '../../lib/bytes.js';
import type { Role } from '../../protocol/messages.js';
import { clusterLockPcr } from '../derive.js';

const ZERO = '0'.repeat(64);

/**
 * PCR 15 decides join vs rejoin: a node that already extended a cluster ID is bound to that
 * cluster. Join needs PCR 15 = 0; rejoin needs PCR 15 = H(0^32 || H(this cluster's ID)).
 */
export function checkClusterLock(role: Role, pcr15: string, clusterId: Uint8Array): void {
  const ours = toHex(clusterLockPcr(clusterId));
  switch (role) {
    case 'join':
      if (pcr15 !== ZERO) {
        throw new SextantError({
          code: 'CLUSTER_LOCK_SET',
          message: pcr15 === ours ? 'PCR 15 already holds this cluster ID: ask for a rejoin, not a join' : 'PCR 15 is set: the node is bound to a cluster and cannot join as new',
        });
      }
      return;
    case 'rejoin':
      if (pcr15 !== ours) {
        throw new SextantError({
          code: 'CLUSTER_LOCK_MISMATCH',
          message: pcr15 === ZERO ? 'rejoin with PCR 15 unset: the node never locked to this cluster' : "PCR 15 holds another cluster's ID",
        });
      }
      return;
  }
}
