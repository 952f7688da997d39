import test from 'ava';
import { randomBytes } from 'node:crypto';
import { run } from '../../lib/exec.js';
import { clusterLockPcr, deriveClusterId, deriveDiskKey } from '../../keyservice/derive.js';
import { toHex } from '../../lib/bytes.js';

/** openssl's HKDF is the independent oracle. */
async function opensslHkdf(ikm: Buffer, salt: Buffer, info: string): Promise<string> {
  const r = await run('openssl', ['kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${toHex(ikm)}`, '-kdfopt', `hexsalt:${toHex(salt)}`, '-kdfopt', `info:${info}`, 'HKDF']);
  return r.stdout.trim().replace(/:/g, '').toLowerCase();
}

test('disk key = HKDF-SHA256(masterSecret, salt, "key-" + diskUUID, 32), per openssl kdf', async (t) => {
  const master = randomBytes(32);
  const salt = randomBytes(32);
  const uuid = '6a1f0c2e-8d3b-4b7a-9c51-2f4e6d8a0b1c';
  t.is(toHex(deriveDiskKey(master, salt, uuid)), await opensslHkdf(master, salt, 'key-' + uuid));
  t.not(toHex(deriveDiskKey(master, salt, uuid)), toHex(deriveDiskKey(master, salt, '6a1f0c2e-8d3b-4b7a-9c51-2f4e6d8a0b1d')));
});

test('cluster ID = HKDF-SHA256(masterSecret, salt, "cluster-id", 32), per openssl kdf', async (t) => {
  const master = randomBytes(32);
  const salt = randomBytes(32);
  t.is(toHex(deriveClusterId(master, salt)), await opensslHkdf(master, salt, 'cluster-id'));
});

test('the cluster lock is H(0^32 || H(clusterId)) (known answer from Python hashlib)', (t) => {
  t.is(toHex(clusterLockPcr(Buffer.alloc(0))), '1c9ecec90e28d2461650418635878a5c91e49f47586ecf75f2b0cbb94e897112');
});
