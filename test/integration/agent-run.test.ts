/**
 * `sextant agent run` as a process, the whole way a node runs it except device-mapper: a real
 * swtpm (koffi -> ESYS engine), `sextant keyservice` on loopback (pinned TLS), real
 * cryptsetup on an image file, and the strict kubeadm stand-in.
 *
 * The host kernel has no device-mapper, so the config sets stateDisk.deviceMapper=false: the
 * disk step stops after the LUKS2 format / header + key check (like `agent disk prepare
 * --no-open`); open, mkfs, mount, the marker and the bind mounts run in the QEMU e2e boot
 * (test/e2e/node-boot.test.ts), through the same code.
 */
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { sextant } from '../helpers/cli.js';
import { opensslClusterLock, opensslHkdf, readStateSecrets } from '../helpers/keyservice-fixture.js';
import { FIXTURES, SEXTANT_BIN } from '../helpers/paths.js';
import { writeAgentRunKeyServiceConfig } from '../helpers/agent-run-keyservice.js';
import { rebootSwtpm, startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { cryptsetup, luksJson, sha256File, sparseImage } from '../agent/disk/images.js';

const DISK = 'a9e1c2d3-4b5c-4d6e-8f70-8192a3b4c5d6';
let tpm: Swtpm | undefined;
let dir: string;
let state: string;
let ksConfig: string;
let service: KeyServiceChild | undefined;
let url: string;
let fingerprint: string;
let clusterId: string;

async function startService(listen: string): Promise<KeyServiceChild> {
  service = await spawnKeyService(['--config', ksConfig, '--listen', listen]);
  return service;
}

async function stopService(): Promise<void> {
  await service?.stop();
  service = undefined;
}

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'agent-run-int-'));
  ({ config: ksConfig, stateDir: state } = await writeAgentRunKeyServiceConfig(dir, tpm));
  const s = await startService('127.0.0.1:0');
  url = s.listening;
  fingerprint = s.fingerprint;
  clusterId = s.clusterId;
});

test.after.always(async () => {
  await stopService();
  await tpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Node {
  config: string;
  image: string;
  statusFile: string;
  pki: string;
  record: string;
}

async function nodeFiles(name: string, image: string, over: Record<string, unknown> = {}): Promise<Node> {
  const base = path.join(dir, name);
  const n: Node = { config: `${base}.json`, image, statusFile: `${base}-status.json`, pki: `${base}-pki`, record: `${base}-kubeadm.jsonl` };
  await writeFile(
    n.config,
    JSON.stringify({
      keyservice: { url, fingerprint },
      node: { name: 'node-int' },
      stateDisk: { device: image, diskUuid: DISK, deviceMapper: false, mountpoint: `${base}-mnt`, bindMounts: [] },
      tpm: { tcti: tpm!.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: `${base}-run/kubeadm-join.yaml`, kubeletPkiDir: n.pki, startKubelet: ['true'], retryDelayMs: 10 },
      retry: { initialMs: 200, maxMs: 1000 },
      statusFile: n.statusFile,
      ...over,
    }),
  );
  return n;
}

async function audit(): Promise<{ decision: string; role?: string; pcrs?: Record<string, string> }[]> {
  return readAuditRecords(path.join(state, 'audit.log'));
}

function records(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const agentRun = (n: Node) => sextant(['agent', 'run', '--config', n.config], { env: { KUBEADM_STANDIN_RECORD: n.record } });

let image: string;
let first: Node;

test.serial('blank image -> join: LUKS2 formatted under HKDF(master, "key-"+uuid) (openssl), PCR 15 = H(0^32||H(clusterID)) (tpm2_pcrread), kubeadm join, kubelet certificate from the cluster CA', async (t) => {
  image = await sparseImage(path.join(dir, 'state.img'));
  first = await nodeFiles('node1', image);
  const r = await agentRun(first);
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.deepEqual(recs.filter((x) => x.outcome === 'done').map((x) => x.step), ['config', 'inventory', 'find-disk', 'attest', 'disk', 'lock', 'join', 'done']);
  t.like(recs.find((x) => x.step === 'attest'), { role: 'join', source: 'keyservice', clusterId });
  t.like(recs.find((x) => x.step === 'disk'), { state: 'formatted', found: 'blank', marker: 'skipped (no device-mapper)' });

  // The header as sextant's allow-list wants it, and the key service's key (by openssl) opens it.
  const m = await luksJson(image);
  t.like(m.segments['0'], { encryption: 'aes-xts-plain64', sector_size: 4096 });
  const s = await readStateSecrets(state);
  const key = Buffer.from(await opensslHkdf(s.master, s.salt, 'key-' + DISK), 'hex');
  t.is((await cryptsetup(['open', '--test-passphrase', '--key-file', '-', image], key)).exitCode, 0);
  t.is(clusterId, await opensslHkdf(s.master, s.salt, 'cluster-id'));

  // PCR 15 read back by tpm2-tools, against the formula computed by openssl.
  const pcr = (await run('tpm2_pcrread', ['sha256:15'], { env: tpm!.env })).stdout;
  const lock = await opensslClusterLock(clusterId);
  t.regex(pcr.toLowerCase(), new RegExp(`15\\s*:\\s*0x${lock}`));
  // ... and the key service audited the post-lock quote holding it (the confirm round).
  t.like(recs.find((x) => x.step === 'lock'), { lock: 'extended', confirm: { confirmed: true } });
  const confirmed = (await audit()).filter((a) => a.decision === 'lock-confirmed');
  t.is(confirmed.length, 1);
  t.is(confirmed[0].pcrs?.['15'], lock);

  // kubeadm: one valid v1beta4 join; the kubelet certificate chains to the cluster CA and names the node.
  const calls = (await readFile(first.record, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; problems: string[] });
  t.deepEqual(calls.map((c) => [c.args[0], c.problems.length]), [['join', 0]]);
  const current = path.join(first.pki, 'kubelet-client-current.pem');
  await run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.crt'), current]);
  t.regex((await run('openssl', ['x509', '-in', current, '-noout', '-subject', '-nameopt', 'RFC2253'])).stdout, /CN=system:node:node-int/);
  const certKey = (await run('openssl', ['x509', '-in', current, '-noout', '-pubkey'])).stdout;
  t.is((await run('openssl', ['pkey', '-in', current, '-pubout'])).stdout, certKey, 'the key in the bundle is the certified one');

  // agent status, both forms.
  const st = await sextant(['agent', 'status', '--status-file', first.statusFile, '--json']);
  t.is(st.exitCode, 0);
  t.like(JSON.parse(st.stdout), { outcome: 'done', step: 'done', path: 'join', role: 'join', clusterId, runs: 1 });
  const human = await sextant(['agent', 'status', '--status-file', first.statusFile]);
  t.regex(human.stdout, /outcome done at step done/);
});

test.serial('run again in the same boot: nothing is redone (no key asked, no format, no second extend)', async (t) => {
  const before = await sha256File(image);
  const r = await agentRun(first);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(records(r.stdout).map((x) => `${x.step} ${x.outcome}`), ['config done', 'config resumed', 'done skipped']);
  t.is(await sha256File(image), before);
});

test.serial('status lost but PCR 15 locked (same boot): rejoin with the lock, disk verified not formatted, no kubeadm, no second extend', async (t) => {
  const before = await sha256File(image);
  const n = await nodeFiles('node1b', image);
  const r = await agentRun(n);
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.like(recs.find((x) => x.step === 'attest'), { role: 'rejoin', pcr15: "this cluster's lock" });
  t.like(recs.find((x) => x.step === 'disk'), { state: 'verified', found: 'sextant' });
  t.like(recs.find((x) => x.step === 'lock'), { lock: 'already-locked' });
  t.like(recs.find((x) => x.step === 'join'), { action: 'start-kubelet' });
  t.is(await sha256File(image), before, 'not a byte changed');
  await t.throwsAsync(readFile(n.record, 'utf8'), undefined, 'kubeadm never ran');
});

test.serial('reboot (TPM reset: PCR 15 zero again, new /run): our disk -> rejoin, verified not formatted, kubelet started, locked again', async (t) => {
  await rebootSwtpm(tpm!);
  const before = await sha256File(image);
  const n = await nodeFiles('node1-boot2', image);
  const r = await agentRun(n);
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.like(recs.find((x) => x.step === 'find-disk'), { found: 'sextant', path: 'rejoin' });
  t.like(recs.find((x) => x.step === 'attest'), { role: 'rejoin', pcr15: 'zero', joinTicket: false });
  t.like(recs.find((x) => x.step === 'disk'), { state: 'verified', found: 'sextant' });
  t.like(recs.find((x) => x.step === 'lock'), { lock: 'extended', confirm: { confirmed: true } });
  t.like(recs.find((x) => x.step === 'join'), { action: 'start-kubelet' });
  t.is(await sha256File(image), before, 'not a byte changed');
  await t.throwsAsync(readFile(n.record, 'utf8'), undefined, 'kubeadm never ran');
  t.regex((await run('tpm2_pcrread', ['sha256:15'], { env: tpm!.env })).stdout.toLowerCase(), new RegExp(await opensslClusterLock(clusterId)));
});

test.serial('a foreign image (ext4) is refused before attesting: exit 1, DISK_FOREIGN_DATA, bytes unchanged', async (t) => {
  const foreign = await sparseImage(path.join(dir, 'foreign.img'));
  await run('mkfs.ext4', ['-q', '-F', foreign]);
  const before = await sha256File(foreign);
  const n = await nodeFiles('node2', foreign);
  const r = await agentRun(n);
  t.is(r.exitCode, 1);
  t.like(records(r.stdout).find((x) => x.outcome === 'failed'), { step: 'find-disk', code: 'DISK_FOREIGN_DATA' });
  t.is(await sha256File(foreign), before);
  t.like(JSON.parse((await sextant(['agent', 'status', '--status-file', n.statusFile, '--json'])).stdout), { outcome: 'failed', lastError: { step: 'find-disk', code: 'DISK_FOREIGN_DATA' } });
});

test.serial('no configuration: exit 2 with FILE_NOT_FOUND (systemd does not restart)', async (t) => {
  const r = await sextant(['agent', 'run', '--config', path.join(dir, 'missing.json')], { env: { CREDENTIALS_DIRECTORY: path.join(dir, 'no-creds') } });
  t.is(r.exitCode, 2);
  t.like(records(r.stdout)[0], { step: 'config', outcome: 'failed', code: 'FILE_NOT_FOUND' });
});

test.serial('key service down at start: the agent retries with growing delays, succeeds once the service is back', async (t) => {
  await stopService();
  const port = Number(new URL(url).port);
  const n = await nodeFiles('node3', image);
  const agent = execa(process.execPath, [SEXTANT_BIN, 'agent', 'run', '--config', n.config], { reject: false, env: { KUBEADM_STANDIN_RECORD: n.record } });
  let out = '';
  const retried = new Promise<void>((resolve) => {
    agent.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (records(out).filter((x) => x.outcome === 'retrying').length >= 3) resolve();
    });
  });
  await Promise.race([retried, agent]);
  await startService(`127.0.0.1:${port}`);
  const r = await agent;
  t.is(r.exitCode, 0, String(r.stderr));
  const recs = records(String(r.stdout));
  const delays = recs.filter((x) => x.outcome === 'retrying').map((x) => Number(x.delayMs));
  t.true(delays.length >= 3, JSON.stringify(delays));
  for (let i = 1; i < Math.min(delays.length, 3); i++) t.true(delays[i] >= delays[i - 1] * 1.5, `growing: ${delays.join(' ')}`);
  t.true(delays.every((d) => d >= 150 && d <= 1000), `within [3/4 initial, max]: ${delays.join(' ')}`);
  t.like(recs.find((x) => x.step === 'attest' && x.outcome === 'done'), { role: 'rejoin' });
});
