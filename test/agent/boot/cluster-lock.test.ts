import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { useSwtpm, type Swtpm } from '../../helpers/swtpm.js';
import { lockToCluster, lockedPcr15, readLockState, type PcrLockTpm } from '../../../agent/boot/cluster-lock.js';
import { tempDir } from '../disk/images.js';
import { opensslClusterLock } from '../../helpers/keyservice-fixture.js';

// Cluster IDs as the key service releases them: 64 hex digits naming 32 raw bytes.
const A = 'a1'.repeat(32);
const B = 'b2'.repeat(32);


// swtpm (a real TPM 2.0) driven by tpm2-tools: the TPM computes the extend, the test only
// compares with the documented formula.
const tpm = useSwtpm(test);

function tools(s: Swtpm, dir: string): PcrLockTpm {
  return {
    async readPcrSha256(i) {
      const out = path.join(dir, `pcr${i}.bin`);
      await run('tpm2_pcrread', [`sha256:${i}`, '-o', out], { env: s.env });
      return readFile(out);
    },
    async pcrEvent(i, data) {
      await run('tpm2_pcrevent', [String(i)], { env: s.env, input: data });
    },
  };
}

test.serial('PCR 15 lock: zero -> H(0^32 || H(clusterID)) on a real TPM, once; then rejoin state; other cluster refused', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const s = tpm();
  const t2 = tools(s, dir);
  t.deepEqual(await readLockState(t2, B), { kind: 'unlocked' });
  t.is(await lockToCluster(t2, A), 'extended');
  t.is((await readFile(path.join(dir, 'pcr15.bin'))).toString('hex'), await opensslClusterLock(A));
  t.is(lockedPcr15(A).toString('hex'), await opensslClusterLock(A));
  t.is(await lockToCluster(t2, A), 'already-locked');
  t.deepEqual(await readLockState(t2, A), { kind: 'locked', clusterId: A });
  await t.throwsAsync(lockToCluster(t2, B), { code: 'CLUSTER_LOCK_MISMATCH' });
  t.is(Buffer.from(await t2.readPcrSha256(15)).toString('hex'), await opensslClusterLock(A), 'a refused lock must not extend');
});

test('a cluster ID that is not 64 hex digits is refused before anything is extended', async (t) => {
  let extended = false;
  const fake: PcrLockTpm = { readPcrSha256: async () => Buffer.alloc(32), pcrEvent: async () => void (extended = true) };
  await t.throwsAsync(lockToCluster(fake, 'cluster-a'), { code: 'INVALID_ARGUMENT' });
  t.false(extended);
});
