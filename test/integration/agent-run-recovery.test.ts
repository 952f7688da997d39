/**
 * The recovery race as a node runs it: `sextant agent run` (real swtpm through the TPM
 * engine, real cryptsetup on an image file holding sextant's LUKS2 header) cannot reach its
 * key service, so it serves the recovery endpoint. Attackers come first (issue 11, item 4):
 * one without a pinned TLS identity runs the whole admin flow, one with a pinned admin key
 * sends a key of its own; both are refused, the status file keeps every byte, the endpoint
 * stays up. Then the admin's real `sextant recover` (presenting the key service's identity
 * from its state dir, which the node pins) verifies the node and sends the key; the agent
 * opens its disk with it and finishes. No key service process exists in this test.
 */
import test from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sextant } from '../helpers/cli.js';
import { freeLoopbackPort } from '../helpers/node-vm.js';
import { measurementsKeys, opensslHkdf, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { FIXTURES, SEXTANT_BIN } from '../helpers/paths.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sha256File, sparseImage } from '../agent/disk/images.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { postJson } from '../../agent/attest/transport.js';
import { generateTlsIdentity } from '../../agent/recovery/self-signed-cert.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import { loadReferenceSet } from '../../attestation/policy/load-reference.js';
import { recoverNode } from '../../keyservice/recover.js';
import { loadCaCertificates } from '../../attestation/tpm/ek-chain.js';

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

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('key service unreachable: forged recoveries are refused with nothing persisted; then the admin verifies the node with `sextant recover`, the agent opens its disk with the recovered key and finishes', async (t) => {
  // The cluster's key service state dir (the admin's copy): secrets and the TLS identity the node pins.
  const state = await openStateDir(path.join(dir, 'state'));
  const key = Buffer.from(await opensslHkdf(state.masterSecret, state.salt, 'key-' + DISK), 'hex');
  const clusterId = await opensslHkdf(state.masterSecret, state.salt, 'cluster-id');
  // A rogue admin key, pinned on the node (recovery.adminKeys): an identity the node accepts.
  const rogue = generateTlsIdentity('rogue-admin');
  const rogueSpki = (await run('openssl', ['pkey', '-pubout', '-outform', 'DER'], { input: rogue.keyPem })).stdoutBytes;
  const roguePin = 'sha256:' + toHex(hash('sha256', rogueSpki));

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
  const statusFile = `${base}-status.json`;
  await writeFile(
    config,
    JSON.stringify({
      keyservice: { url: `https://127.0.0.1:${deadKeyService}`, fingerprint: state.fingerprint },
      node: { name: 'node-rec' },
      stateDisk: { device: image, diskUuid: DISK, deviceMapper: false, mountpoint: `${base}-mnt`, bindMounts: [] },
      tpm: { tcti: tpm!.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: `${base}-run/kubeadm-join.yaml`, kubeletPkiDir: `${base}-pki`, startKubelet: ['true'], retryDelayMs: 10 },
      // One failed attempt, then a long wait: the status file holds still while the attackers try.
      retry: { initialMs: 600_000, maxMs: 600_000 },
      recovery: { enabled: true, address: '127.0.0.1', port: recoveryPort, adminKeys: [roguePin] },
      statusFile,
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
    const status = await until('the status file to say waiting', async () => {
      const b = await readFile(statusFile).catch(() => undefined);
      return b && (JSON.parse(b.toString()) as { outcome: string }).outcome === 'waiting' ? b : undefined;
    });

    // The attackers run the real admin flow (EK CA and measurements are public) with secrets of their own.
    const attack = async (client?: { keyPem: string; certPem: string }) =>
      recoverNode({
        post: (route, body) => postJson({ url: `https://127.0.0.1:${recoveryPort}`, fingerprint, peer: 'node', client }, route, body),
        node: 'attacker',
        masterSecret: randomBytes(32),
        salt: randomBytes(32),
        references: [await loadReferenceSet(measurements, measurements + '.sig', await readFile(keys.pubPem, 'utf8'))],
        ekCas: loadCaCertificates([await readFile(tpm!.caCertPath, 'utf8'), await readFile(tpm!.issuerCertPath, 'utf8')]),
      });
    // First come, no pinned identity (on main: accepted, the endpoint closed, the admin got ECONNREFUSED).
    await t.throwsAsync(attack(), { code: 'RECOVERY_UNAUTHORIZED' });
    const selfMade = generateTlsIdentity('attacker');
    await t.throwsAsync(attack({ keyPem: selfMade.keyPem, certPem: selfMade.certPem }), { code: 'RECOVERY_UNAUTHORIZED' });
    // A pinned identity, but a key that does not open the disk (its cluster ID differs too).
    await t.throwsAsync(attack({ keyPem: rogue.keyPem, certPem: rogue.certPem }), { code: 'DISK_WRONG_KEY' });
    t.true((await readFile(statusFile)).equals(status), 'nothing of a forged answer was persisted');
    t.is(await sha256File(image), before);
    t.is(agent.exitCode, null, 'the agent is still waiting');

    const r = await sextant([
      'recover', '--node', `https://127.0.0.1:${recoveryPort}`, '--node-fingerprint', fingerprint,
      '--master-secret', path.join(state.dir, 'master-secret'),
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
    t.regex(String(done.stderr), /refused a request from .*RECOVERY_UNAUTHORIZED/);
    t.regex(String(done.stderr), /refused a request from .*DISK_WRONG_KEY/);
    // Single use: the endpoint is gone with the agent's success.
    const again = await sextant(['recover', '--node', `https://127.0.0.1:${recoveryPort}`, '--node-fingerprint', fingerprint, '--master-secret', path.join(state.dir, 'master-secret'), '--measurements', measurements, '--measurements-key', keys.pubPem, '--ek-ca', tpm!.caCertPath, '--json']);
    t.is(again.exitCode, 1);
  } finally {
    agent.kill('SIGTERM');
    await agent;
  }
});
