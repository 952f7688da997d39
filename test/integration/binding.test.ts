/**
 * Disk keys are bound to the node they were first released to (docs/disk-binding.md), end to
 * end: two real swtpms, `sextant agent attest` over real HTTPS, the real `sextant keyservice`
 * process, the admin's `sextant keyservice disk rebind`, and restarts of the service.
 * On code without the binding, node B gets node A's disk key in the second test.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { ekPublicSha256 as ekOracle } from '../helpers/ek-oracle.js';
import { hash, toHex } from '../../lib/bytes.js';

const DISK = '5eed0000-1234-4abc-8def-0123456789ab';
let a: Swtpm;
let b: Swtpm;
let dir: string;
let state: string;
let serviceArgs: string[];
let service: KeyServiceChild | undefined;
let diskKeySha256: string;

const ekPublicSha256 = (tpm: Swtpm) => ekOracle(tpm, dir);

async function attest(tpm: Swtpm, node: string, role: 'join' | 'rejoin' = 'join') {
  const r = await sextant(['agent', 'attest', '--tcti', tpm.tcti, '--keyservice', service!.listening, '--ca-fingerprint', service!.fingerprint,
    '--disk-uuid', DISK, '--node-name', node, '--role', role, '--no-event-log', '--json']);
  return { ...r, out: JSON.parse(r.stdout) as { ok: boolean; code?: string; message?: string; diskKeySha256?: string } };
}

async function lastAudit(): Promise<Record<string, unknown>> {
  const lines = (await readFile(path.join(state, 'audit.log'), 'utf8')).trimEnd().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

test.before(async () => {
  [a, b] = await Promise.all([startSwtpm(), startSwtpm()]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'binding-int-'));
  state = path.join(dir, 'state');
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  serviceArgs = ['--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', measurements, '--measurements-key', keys.pubPem,
    ...[a, b].flatMap((t) => ['--ek-ca', t.caCertPath, '--ek-ca', t.issuerCertPath])];
  service = await spawnKeyService(serviceArgs);
  const s = await readStateSecrets(state);
  diskKeySha256 = toHex(hash('sha256', Buffer.from(await opensslHkdf(s.master, s.salt, 'key-' + DISK), 'hex')));
});

test.after.always(async () => {
  await service?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

test.serial('node A gets disk U (the first release binds U to A)', async (t) => {
  const r = await attest(a, 'node-a');
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.out.diskKeySha256, diskKeySha256);
  t.like(await lastAudit(), { decision: 'release', diskUuid: DISK, ekPublicSha256: await ekPublicSha256(a), diskBinding: { revision: 1, state: 'bound-now' } });
});

test.serial("node B asking for U: DISK_BOUND_ELSEWHERE, no key, A's identity not named; audited as a refusal", async (t) => {
  const r = await attest(b, 'node-b');
  t.is(r.exitCode, 1, `B was not refused: it got disk key sha256 ${String(r.out.diskKeySha256)} (A's is ${diskKeySha256})`);
  t.like(r.out, { ok: false, code: 'DISK_BOUND_ELSEWHERE' });
  const [ekA, ekB] = [await ekPublicSha256(a), await ekPublicSha256(b)];
  t.false(r.stdout.includes(ekA) || r.stderr.includes(ekA), "the refusal names A's EK");
  t.false(r.stdout.includes(diskKeySha256));
  // B is told its own identity, for the admin's rebind.
  t.true(r.out.message!.includes(`--to-ek-sha256 ${ekB}`), r.out.message);
  const rec = await lastAudit();
  t.like(rec, { decision: 'refuse', stage: 'checkDiskBinding', code: 'DISK_BOUND_ELSEWHERE', diskUuid: DISK, ekPublicSha256: ekB, diskBoundTo: ekA });
  t.false('diskKey' in rec);
});

test.serial("A's rejoin still gets U; disk list shows U bound to A", async (t) => {
  const r = await attest(a, 'node-a', 'rejoin');
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.out.diskKeySha256, diskKeySha256);
  const l = await sextant(['keyservice', 'disk', 'list', '--state-dir', state, '--json']);
  t.is(l.exitCode, 0, l.stderr);
  t.like(JSON.parse(l.stdout), { ok: true, bindings: [{ diskUuid: DISK, revision: 1, ekPublicSha256: await ekPublicSha256(a), nodeName: 'node-a', cause: 'first-release' }] });
});

test.serial('rebind while the service runs: AUDIT_LOG_IN_USE, nothing changes', async (t) => {
  const r = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', state, '--disk', DISK, '--to-ek-sha256', await ekPublicSha256(b), '--json']);
  t.is(r.exitCode, 1, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'AUDIT_LOG_IN_USE' });
  t.is((await attest(b, 'node-b')).out.code, 'DISK_BOUND_ELSEWHERE');
});

test.serial('after the admin rebinds U to B (audited): B gets U, A is refused, and it survives a restart', async (t) => {
  const [ekA, ekB] = [await ekPublicSha256(a), await ekPublicSha256(b)];
  await service!.stop();
  const r = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', state, '--disk', DISK, '--to-ek-sha256', ekB, '--reason', 'mainboard replaced', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: true, diskUuid: DISK, from: ekA, to: ekB, revision: 2 });
  t.like(await lastAudit(), { decision: 'disk-rebind', diskUuid: DISK, from: ekA, to: ekB, revision: 2, reason: 'mainboard replaced' });

  for (const restart of ['after the rebind', 'after another restart']) {
    service = await spawnKeyService(serviceArgs);
    const gotB = await attest(b, 'node-b');
    t.is(gotB.exitCode, 0, `${restart}: ${gotB.stderr}`);
    t.is(gotB.out.diskKeySha256, diskKeySha256, restart);
    const gotA = await attest(a, 'node-a', 'rejoin');
    t.is(gotA.out.code, 'DISK_BOUND_ELSEWHERE', restart);
    await service.stop();
  }
  const v = await sextant(['keyservice', 'audit', 'verify', path.join(state, 'audit.log'), '--json']);
  t.is(v.exitCode, 0, v.stderr);
  service = undefined;
});
