import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { useSwtpm, type Swtpm } from '../../helpers/swtpm.js';
import { lockToCluster, lockedPcr15, readLockState, type PcrLockTpm } from '../../../agent/boot/cluster-lock.js';
import { tempDir } from '../disk/images.js';

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
  t.deepEqual(await readLockState(t2, 'c1'), { kind: 'unlocked' });
  t.is(await lockToCluster(t2, 'cluster-a'), 'extended');
  t.is((await readFile(path.join(dir, 'pcr15.bin'))).toString('hex'), lockedPcr15('cluster-a').toString('hex'));
  t.is(await lockToCluster(t2, 'cluster-a'), 'already-locked');
  t.deepEqual(await readLockState(t2, 'cluster-a'), { kind: 'locked', clusterId: 'cluster-a' });
  await t.throwsAsync(lockToCluster(t2, 'cluster-b'), { code: 'CLUSTER_LOCK_MISMATCH' });
  t.is(Buffer.from(await t2.readPcrSha256(15)).toString('hex'), lockedPcr15('cluster-a').toString('hex'), 'a refused lock must not extend');
});
