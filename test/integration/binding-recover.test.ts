/**
 * `sextant recover` (the admin path, with the master secret) respects the disk binding: a disk
 * bound to another node's EK is refused before anything is sent; once the admin unbinds it,
 * recovery binds it to the recovering node and says so. Real swtpm, real HTTPS, real CLI.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { startRecoveryServer, type RecoveryServer } from '../../agent/recovery/server.js';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import { deriveDiskKey } from '../../keyservice/derive.js';

const DISK = '7ec0e4ed-7b3d-4e8f-9a01-b2c3d4e5f607';
let swtpm: Swtpm;
let tpm: EngineAttestationTpm;
let dir: string;
let state: string;
let node: RecoveryServer;
let args: string[];

test.before(async () => {
  swtpm = await startSwtpm();
  tpm = await EngineAttestationTpm.open(swtpm.tcti);
  dir = await mkdtemp(path.join(os.tmpdir(), 'binding-recover-'));
  state = path.join(dir, 'state');
  const st = await openStateDir(state);
  const keys = await measurementsKeys(dir);
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true }, '9': { expected: '00'.repeat(32), enforced: true } });
  // The node trusts the key service's certificate (what `sextant recover` presents from the
  // state dir); its disk stand-in accepts exactly the key derived for DISK (the real key proof
  // on a LUKS2 image is recovery.test.ts's).
  const diskKey = deriveDiskKey(st.masterSecret, st.salt, DISK);
  node = await startRecoveryServer({
    tpm, diskUuid: DISK, nodeName: 'worker-9', host: '127.0.0.1', port: 0,
    trust: { certificates: [st.fingerprint], publicKeys: [] },
    proveKey: async (k) => k.equals(diskKey),
  });
  args = ['recover', '--node', `https://127.0.0.1:${node.port}`, '--node-fingerprint', node.fingerprint, '--master-secret', path.join(state, 'master-secret'),
    '--measurements', m, '--measurements-key', keys.pubPem, '--ek-ca', swtpm.caCertPath, '--ek-ca', swtpm.issuerCertPath, '--json'];
});

test.after.always(async () => {
  await node?.close();
  await tpm?.dispose();
  await swtpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('a disk bound to another EK: recover exits 1 DISK_BOUND_ELSEWHERE and the node still waits for its key', async (t) => {
  const other = randomBytes(32).toString('hex');
  await LocalBindingStore.inStateDir(state).bindIfAbsent(DISK, other, { nodeName: 'worker-1' });
  const r = await sextant(args);
  t.is(r.exitCode, 1, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'DISK_BOUND_ELSEWHERE' });
  const waiting = await Promise.race([node.secrets.then(() => false, () => false), new Promise<boolean>((res) => setTimeout(() => res(true), 50))]);
  t.true(waiting, 'the node received a key');
});

test.serial('after the admin unbinds it, recover binds the disk to this node and reports it', async (t) => {
  const u = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', state, '--disk', DISK, '--unbind', '--reason', 'recovering worker-9', '--json']);
  t.is(u.exitCode, 0, u.stderr);
  const r = await sextant(args);
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; diskBinding: { state: string; revision: number; ekPublicSha256: string } };
  t.like(out, { ok: true, diskBinding: { state: 'bound-now', revision: 3 } });
  t.like(await LocalBindingStore.inStateDir(state).get(DISK), { revision: 3, ekPublicSha256: out.diskBinding.ekPublicSha256, nodeName: 'worker-9', cause: 'first-release' });
  await node.secrets;
});
