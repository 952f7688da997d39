/**
 * Key service replicas and the agent's failover: two real `sextant keyservice` processes on
 * loopback, started the way replicas are (the second gets a copy of the first's master
 * secret, salt, TLS key and certificate: one pin, one cluster), and `sextant agent run` /
 * `sextant agent attest` as processes with a real swtpm and cryptsetup on an image file.
 * The first replica is killed with SIGKILL in the middle of an attestation (after its
 * round-1 challenge is in its audit log), then is simply down: each time the agent attests
 * at the second, and its status names the endpoint that answered.
 */
import test from 'ava';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { sextant } from '../helpers/cli.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { FIXTURES } from '../helpers/paths.js';
import { rebootSwtpm, startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sparseImage } from '../agent/disk/images.js';

const DISK = 'b1e2c3d4-4b5c-4d6e-8f70-8192a3b4c5d6';
let tpm: Swtpm;
let dir: string;
const replicas: { state: string; config: string; child?: KeyServiceChild; url?: string }[] = [];
let fingerprint: string;

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'agent-failover-'));
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true } });
  const ca = await makeClusterCa(dir);
  for (const name of ['a', 'b']) {
    const r = { state: path.join(dir, `state-${name}`), config: path.join(dir, `keyservice-${name}.json`) };
    await writeFile(
      r.config,
      JSON.stringify({
        stateDir: r.state,
        measurements,
        measurementsKey: keys.pubPem,
        ekCa: [tpm.caCertPath, tpm.issuerCertPath],
        join: { apiServerEndpoint: '10.0.0.1:6443', caCert: ca.caCert, caKey: ca.caKey, tokenTtlSeconds: 600, certDays: 1 },
      }),
    );
    replicas.push(r);
  }
  const [a, b] = replicas;
  a.child = await spawnKeyService(['--config', a.config, '--listen', '127.0.0.1:0']);
  // A replica is the first one's secrets and TLS identity in another state directory.
  await mkdir(b.state, { recursive: true, mode: 0o700 });
  for (const f of ['master-secret', 'salt', 'tls-key.pem', 'tls-cert.pem']) await copyFile(path.join(a.state, f), path.join(b.state, f));
  b.child = await spawnKeyService(['--config', b.config, '--listen', '127.0.0.1:0']);
  fingerprint = a.child.fingerprint;
  a.url = a.child.listening;
  b.url = b.child.listening;
});

test.after.always(async () => {
  for (const r of replicas) await r.child?.stop();
  await tpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

const decisions = async (r: { state: string }): Promise<string[]> => (await readAuditRecords(path.join(r.state, 'audit.log'))).map((x) => x.decision as string);

/** A node whose configuration lists both replicas, the first first. */
async function node(name: string): Promise<{ config: string; statusFile: string }> {
  const base = path.join(dir, name);
  const image = await sparseImage(`${base}.img`);
  const n = { config: `${base}.json`, statusFile: `${base}-status.json` };
  await writeFile(
    n.config,
    JSON.stringify({
      keyservice: { url: [replicas[0].url, replicas[1].url], fingerprint },
      node: { name },
      stateDisk: { device: image, diskUuid: DISK, deviceMapper: false, mountpoint: `${base}-mnt`, bindMounts: [] },
      tpm: { tcti: tpm.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: `${base}-run/kubeadm-join.yaml`, kubeletPkiDir: `${base}-pki`, startKubelet: ['true'], retryDelayMs: 10 },
      retry: { initialMs: 200, maxMs: 1000 },
      statusFile: n.statusFile,
    }),
  );
  return n;
}

test.serial('the replicas are one service: same TLS pin, same cluster', (t) => {
  const [a, b] = replicas;
  t.not(a.url, b.url);
  t.is(a.child!.fingerprint, b.child!.fingerprint);
  t.is(a.child!.clusterId, b.child!.clusterId);
});

test.serial('the first replica killed (SIGKILL) after its round-1 challenge: the agent attests at the second, confirms the lock there, and its status names it', async (t) => {
  const [a, b] = replicas;
  const n = await node('node-mid');
  // Kill the first replica the moment its audit log holds this attestation's challenge:
  // round 2 then has nowhere to go on it.
  let killed = false;
  const watcher = (async () => {
    const file = path.join(a.state, 'audit.log');
    for (let i = 0; i < 30_000 && !killed; i++) {
      if ((await readFile(file, 'utf8').catch(() => '')).includes('"challenge"')) {
        a.child!.child.kill('SIGKILL');
        killed = true;
        await a.child!.child;
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const r = await sextant(['agent', 'run', '--config', n.config], { env: { KUBEADM_STANDIN_RECORD: `${n.config}.kubeadm.jsonl` } });
  await watcher;
  t.true(killed, 'the first replica saw the challenge and was killed');
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  const aDecisions = await decisions(a);
  t.true(aDecisions.includes('challenge'));
  t.false(aDecisions.includes('release'), 'nothing was released by the killed replica: the kill was in the middle');
  const bDecisions = await decisions(b);
  t.deepEqual(bDecisions.filter((d) => d === 'release' || d === 'lock-confirmed'), ['release', 'lock-confirmed'], 'released and the lock confirmed at the second');
  const status = JSON.parse(await readFile(n.statusFile, 'utf8'));
  t.like(status, { outcome: 'done', path: 'join', keySource: 'keyservice', keyservice: b.url });
  t.like(status.steps.attest.detail, { keyservice: b.url, attempts: 1 }, 'failover within the first attempt: no backoff wait');
  const human = await sextant(['agent', 'status', '--status-file', n.statusFile]);
  t.regex(human.stdout, new RegExp(`key from keyservice at ${b.url}`));
  a.child = undefined;
});

test.serial('the first replica down: agent run and agent attest (--keyservice twice) go to the second at once', async (t) => {
  const [a, b] = replicas;
  await rebootSwtpm(tpm); // a new boot: PCR 15 zero again
  const n = await node('node-down');
  const t0 = Date.now();
  const r = await sextant(['agent', 'run', '--config', n.config], { env: { KUBEADM_STANDIN_RECORD: `${n.config}.kubeadm.jsonl` } });
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  t.like(JSON.parse(await readFile(n.statusFile, 'utf8')), { outcome: 'done', keyservice: b.url });
  const attestRecord = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((x) => x.step === 'attest' && x.outcome === 'done');
  t.like(attestRecord, { keyservice: b.url, attempts: 1 });
  t.log(`agent run with the first replica down: ${Date.now() - t0} ms`);

  await rebootSwtpm(tpm);
  const one = await sextant(['agent', 'attest', '--tcti', tpm.tcti, '--keyservice', a.url!, '--keyservice', b.url!, '--ca-fingerprint', fingerprint, '--disk-uuid', DISK, '--node-name', 'node-attest', '--no-event-log', '--attempts', '1', '--json']);
  t.is(one.exitCode, 0, one.stderr + one.stdout);
  t.like(JSON.parse(one.stdout), { ok: true, keyservice: b.url, attempts: 1 });
  t.regex(one.stderr, new RegExp(`key service ${a.url}: KEYSERVICE_UNREACHABLE; trying ${b.url}`));
});
