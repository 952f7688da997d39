/**
 * The recovery race as a node runs it: `sextant agent run` (real swtpm through the koffi ->
 * ESYS engine, real cryptsetup on an image file holding sextant's LUKS2 header) cannot reach
 * its key service, so it serves the recovery endpoint; the admin's `sextant recover` verifies
 * the node and sends the key; the agent opens the disk with it and finishes. No key service
 * process exists in this test: the admin holds the master secret and salt.
 */
import test from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sextant } from '../helpers/cli.js';
import { freeLoopbackPort } from '../helpers/node-vm.js';
import { measurementsKeys, opensslHkdf, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { FIXTURES, SEXTANT_BIN } from '../helpers/paths.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sha256File, sparseImage } from '../agent/disk/images.js';
import { hash, toHex } from '../../lib/bytes.js';

const DISK = 'b7d2e3f4-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
let tpm: Swtpm | undefined;
let dir: string;

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'agent-run-recovery-'));
});

test.after.always(async () => {
  await tpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function records(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('key service unreachable: the admin verifies the node with `sextant recover`, the agent opens its disk with the recovered key and finishes', async (t) => {
  // The cluster's secrets, as a key service state dir holds them (the admin's copy).
  const state = path.join(dir, 'state');
  await mkdir(state, { mode: 0o700 });
  const master = randomBytes(32);
  const salt = randomBytes(32);
  await writeFile(path.join(state, 'master-secret'), master, { mode: 0o600 });
  await writeFile(path.join(state, 'salt'), salt, { mode: 0o600 });
  const key = Buffer.from(await opensslHkdf(master, salt, 'key-' + DISK), 'hex');
  const clusterId = await opensslHkdf(master, salt, 'cluster-id');

  // A state disk sextant formatted earlier with that key: this boot takes the rejoin path.
  const image = await sparseImage(path.join(dir, 'state.img'));
  const prepared = await sextant(['agent', 'disk', 'prepare', '--device', image, '--key-file', '-', '--no-open', '--json'], { input: key });
  t.is(prepared.exitCode, 0, prepared.stderr);
  const before = await sha256File(image);

  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true }, '9': { expected: '00'.repeat(32), enforced: true } });

  const base = path.join(dir, 'node');
  const recoveryPort = await freeLoopbackPort();
  const deadKeyService = await freeLoopbackPort();
  const config = `${base}.json`;
  await writeFile(
    config,
    JSON.stringify({
      keyservice: { url: `https://127.0.0.1:${deadKeyService}`, fingerprint: 'sha256:' + '00'.repeat(32) },
      node: { name: 'node-rec' },
      stateDisk: { device: image, diskUuid: DISK, deviceMapper: false, mountpoint: `${base}-mnt`, bindMounts: [] },
      tpm: { tcti: tpm!.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: `${base}-run/kubeadm-join.yaml`, kubeletPkiDir: `${base}-pki`, startKubelet: ['true'], retryDelayMs: 10 },
      retry: { initialMs: 200, maxMs: 1000 },
      recovery: { enabled: true, address: '127.0.0.1', port: recoveryPort },
      statusFile: `${base}-status.json`,
    }),
  );
  const agent = execa(process.execPath, [SEXTANT_BIN, 'agent', 'run', '--config', config], { reject: false, env: { KUBEADM_STANDIN_RECORD: `${base}-kubeadm.jsonl` } });
  try {
    // The fingerprint the admin pins is in the agent's log (stderr; the journal on a node).
    const fingerprint = await new Promise<string>((resolve, reject) => {
      let err = '';
      agent.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        const m = /recovery endpoint listening on https:\/\/127\.0\.0\.1:(\d+); certificate (sha256:[0-9a-f]{64})/.exec(err);
        if (m && Number(m[1]) === recoveryPort) resolve(m[2]);
      });
      void agent.then((r) => reject(new Error(`agent exited before serving recovery: ${String(r.stderr)}`)));
    });

    const r = await sextant([
      'recover', '--node', `https://127.0.0.1:${recoveryPort}`, '--node-fingerprint', fingerprint,
      '--master-secret', path.join(state, 'master-secret'),
      '--measurements', measurements, '--measurements-key', keys.pubPem,
      '--ek-ca', tpm!.caCertPath, '--ek-ca', tpm!.issuerCertPath, '--json',
    ]);
    t.is(r.exitCode, 0, r.stderr);
    t.like(JSON.parse(r.stdout), { ok: true, diskUuid: DISK, clusterId, clusterLock: 'unlocked', diskKeySha256: toHex(hash('sha256', key)) });

    const done = await agent;
    t.is(done.exitCode, 0, String(done.stderr));
    const recs = records(String(done.stdout));
    t.like(recs.find((x) => x.step === 'attest' && x.outcome === 'done'), { source: 'recovery', clusterId });
    t.like(recs.find((x) => x.step === 'disk'), { state: 'verified', found: 'sextant' });
    t.true(recs.some((x) => x.step === 'done' && x.outcome === 'done'), String(done.stdout));
    t.is(await sha256File(image), before, 'the disk was opened with the recovered key, not reformatted');
    // Single use: the endpoint is gone with the agent's success.
    const again = await sextant(['recover', '--node', `https://127.0.0.1:${recoveryPort}`, '--node-fingerprint', fingerprint, '--master-secret', path.join(state, 'master-secret'), '--measurements', measurements, '--measurements-key', keys.pubPem, '--ek-ca', tpm!.caCertPath, '--json']);
    t.is(again.exitCode, 1);
  } finally {
    agent.kill('SIGTERM');
    await agent;
  }
});
