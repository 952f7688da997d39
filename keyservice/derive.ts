import { hkdfSync } from 'node:crypto';
import { hash } from '../lib/bytes.js';

/**
 * Everything the key service releases is derived from the master secret and salt, so a
 * restart (or a second replica with the same state) gives the same answers and nothing
 * per-node is stored.
 */

function hkdf(masterSecret: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterSecret, salt, Buffer.from(info, 'utf8'), 32));
}

/** The LUKS2 key of one state disk: HKDF-SHA256(masterSecret, salt, "key-" + diskUUID, 32). */
export function deriveDiskKey(masterSecret: Uint8Array, salt: Uint8Array, diskUuid: string): Buffer {
  return hkdf(masterSecret, salt, 'key-' + diskUuid);
}

/** The cluster's identity: HKDF-SHA256(masterSecret, salt, "cluster-id", 32). Not secret. */
export function deriveClusterId(masterSecret: Uint8Array, salt: Uint8Array): Buffer {
  return hkdf(masterSecret, salt, 'cluster-id');
}

/** PCR 15 after the agent's TPM2_PCR_Event(clusterId): H(0^32 || H(clusterId)). */
export function clusterLockPcr(clusterId: Uint8Array): Buffer {
  return hash('sha256', Buffer.alloc(32), hash('sha256', clusterId));
}

/**
 * The key that seals what the key service keeps in a shared store (etcd): sessions carry the
 * credential that proves an AK's binding, so a reader of etcd must learn nothing from them.
 * HKDF-SHA256(masterSecret, salt, "store-seal-v1", 32); "key-" + UUID cannot collide with it.
 */
export function deriveStoreSealKey(masterSecret: Uint8Array, salt: Uint8Array): Buffer {
  return hkdf(masterSecret, salt, 'store-seal-v1');
}
