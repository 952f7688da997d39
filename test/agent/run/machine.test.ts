import test from 'ava';
import { lstat, mkdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import { SextantError } from '../../../lib/errors.js';
import { lockedPcr15 } from '../../../agent/boot/cluster-lock.js';
import { runAgent } from '../../../agent/run/machine.js';
import { markerPath, writeMarker, type StateDiskMarker } from '../../../agent/run/marker.js';
import type { StatusStore } from '../../../agent/run/status.js';
import { CLUSTER, DISK_UUID, KUBEADM, makeWorld, type World } from './world.js';

async function kubeadmCalls(w: World): Promise<{ args: string[]; problems: string[]; config?: { nodeRegistration: { name: string } } }[]> {
  try {
    return (await readFile(w.kubeadmRecord, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** The state disk as a previous boot left it: our header (key 0x42), mounted content with a marker. */
async function ourDisk(w: World, marker: Partial<StateDiskMarker> | undefined = { joinedAt: '2026-11-01T00:01:00Z' }): Promise<void> {
  w.disk.content = 'ours';
  w.disk.headerKey = Buffer.alloc(32, 0x42);
  await mkdir(w.config.stateDisk.mountpoint, { recursive: true });
  if (marker) await writeMarker(w.config.stateDisk.mountpoint, { v: 1, clusterId: CLUSTER, diskUuid: DISK_UUID, initializedAt: '2026-11-01T00:00:00Z', ...marker });
}

const stepRecord = (w: World, step: string) => w.records.filter((r) => r.step === step);

test('blank state disk -> join: formatted once, marker written, bind mounts, PCR 15 locked, kubeadm join with a valid v1beta4 config', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, exitCode: 0, step: 'done', path: 'join' });
  t.is(w.ks.calls.length, 1);
  t.is(w.ks.calls[0].role, 'join');
  t.is(w.ks.calls[0].diskUuid, DISK_UUID, 'the key is asked for the GPT partition UUID of the labelled partition');
  t.true(w.ks.calls[0].csr?.includes('CERTIFICATE REQUEST'));
  t.is(w.disk.formats, 1);
  t.true(w.disk.calls.includes('classify /dev/vdb1'));
  const marker = JSON.parse(await readFile(markerPath(w.config.stateDisk.mountpoint), 'utf8'));
  t.like(marker, { v: 1, clusterId: CLUSTER, diskUuid: DISK_UUID });
  t.truthy(marker.joinedAt, 'the finished join is recorded in the marker');
  t.deepEqual(w.disk.bindMounts.map(([s]) => path.relative(w.config.stateDisk.mountpoint, s)), ['kubelet', 'kubernetes']);
  t.is(toHex(w.tpm.pcr15), toHex(lockedPcr15(CLUSTER)));
  t.is(w.tpm.events.length, 1, 'extended exactly once');
  const calls = await kubeadmCalls(w);
  t.is(calls.length, 1);
  t.deepEqual(calls[0].args, ['join', '--config', w.config.join.configPath]);
  t.deepEqual(calls[0].problems, []);
  t.is(calls[0].config?.nodeRegistration.name, 'node-1');
  await t.throwsAsync(stat(w.config.join.configPath), undefined, 'the config (it holds the token) is removed after the join');
  // The kubelet's certificate store: current -> kubelet-client-<time>.pem (certificate then key), 0600.
  const current = path.join(w.config.join.kubeletPkiDir, 'kubelet-client-current.pem');
  t.true((await lstat(current)).isSymbolicLink());
  t.regex(await readlink(current), /^kubelet-client-[0-9-]+\.pem$/);
  const pem = await readFile(current, 'utf8');
  t.regex(pem, /BEGIN CERTIFICATE-----[\s\S]*BEGIN EC PRIVATE KEY/);
  t.is((await stat(current)).mode & 0o777, 0o600);
  // Records and status.
  t.deepEqual(w.records.filter((x) => x.outcome === 'done').map((x) => x.step), ['config', 'inventory', 'find-disk', 'attest', 'disk', 'lock', 'join', 'done']);
  t.like(stepRecord(w, 'disk')[0], { summary: 'formatted, marker written', marker: 'written' });
  const s = await w.status();
  t.like(s, { outcome: 'done', step: 'done', path: 'join', role: 'join', clusterId: CLUSTER, diskFound: 'blank', runs: 1 });
  t.is((await stat(w.config.statusFile)).mode & 0o777, 0o600);
  t.true(w.notes.some((n) => n.ready), 'READY=1');
  t.true(w.notes.some((n) => n.status === 'sextant agent: attest'), 'STATUS= per step');
  t.is(w.tpm.disposed, 1);
});

test('our LUKS2 header -> rejoin: opened (never formatted), marker present, kubelet started, no kubeadm join', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  await ourDisk(w, { joinedAt: 'y' });
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, exitCode: 0, path: 'rejoin' });
  t.is(w.ks.calls[0].role, 'rejoin', 'PCR 15 is zero after a reboot: the disk says rejoin');
  t.is(w.disk.formats, 0);
  t.like(stepRecord(w, 'disk')[0], { summary: 'opened, marker present', state: 'opened' });
  t.deepEqual(await kubeadmCalls(w), []);
  t.deepEqual(w.execCalls, [['true']], 'join.startKubelet ran instead');
  t.is(toHex(w.tpm.pcr15), toHex(lockedPcr15(CLUSTER)));
  t.like(stepRecord(w, 'join')[0], { action: 'start-kubelet' });
});

test('a foreign disk is refused before attesting: nothing written, no key asked for, PCR 15 untouched, exit 1', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.disk.content = 'foreign';
  const r = await runAgent(w.deps());
  t.like(r, { ok: false, exitCode: 1, step: 'find-disk', code: 'DISK_FOREIGN_DATA' });
  t.deepEqual(w.disk.calls, ['classify /dev/vdb1']);
  t.is(w.ks.calls.length, 0);
  t.deepEqual(w.tpm.events, []);
  t.like(await w.status(), { outcome: 'failed', step: 'find-disk', lastError: { step: 'find-disk', code: 'DISK_FOREIGN_DATA' } });
});

test('a wrong key never formats: our header + another key -> DISK_WRONG_KEY, no format, no lock, no join', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.disk.content = 'ours';
  w.disk.headerKey = Buffer.alloc(32, 0x99);
  const r = await runAgent(w.deps());
  t.like(r, { ok: false, exitCode: 1, step: 'disk', code: 'DISK_WRONG_KEY' });
  t.is(w.disk.formats, 0);
  t.is(w.disk.content, 'ours');
  t.deepEqual(w.tpm.events, []);
  t.deepEqual(await kubeadmCalls(w), []);
});

test('PCR 15 already holds this cluster\'s lock (agent restarted after locking, status lost): rejoin, no second extend', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  await ourDisk(w, { joinedAt: 'y' });
  w.tpm.pcr15 = lockedPcr15(CLUSTER);
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'rejoin' });
  t.is(w.ks.calls[0].role, 'rejoin');
  t.deepEqual(w.tpm.events, []);
  t.like(stepRecord(w, 'lock')[0], { lock: 'already-locked' });
  t.like(stepRecord(w, 'attest')[0], { pcr15: "this cluster's lock" });
});

test('PCR 15 holding some other value at start: CLUSTER_LOCK_MISMATCH after attesting, the disk untouched', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.tpm.pcr15 = Buffer.alloc(32, 0xee);
  const r = await runAgent(w.deps());
  t.like(r, { ok: false, step: 'attest', code: 'CLUSTER_LOCK_MISMATCH' });
  t.is(w.ks.calls[0].role, 'rejoin', 'a locked node never asks for a join');
  t.is(w.disk.formats, 0);
  t.false(w.disk.calls.some((c) => c.startsWith('prepare')));
});

test('a marker from another cluster: refused and closed again (STATE_DISK_CLUSTER_MISMATCH), no lock, no join', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  await ourDisk(w, { clusterId: 'another-cluster', joinedAt: 'y' });
  const r = await runAgent(w.deps());
  t.like(r, { ok: false, step: 'disk', code: 'STATE_DISK_CLUSTER_MISMATCH' });
  t.true(w.disk.calls.includes('close'));
  t.false(w.disk.opened);
  t.deepEqual(w.disk.bindMounts, []);
  t.deepEqual(w.tpm.events, []);
  t.is(JSON.parse(await readFile(markerPath(w.config.stateDisk.mountpoint), 'utf8')).clusterId, 'another-cluster', 'the marker is not rewritten');
});

test('our disk whose marker records no finished join (first boot crashed before kubeadm): the join is redone', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  await ourDisk(w, { joinedAt: undefined });
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'join' });
  t.deepEqual(w.ks.calls.map((c) => c.role), ['rejoin', 'join'], 'a rejoin brings no ticket: asked again as a join before the lock');
  t.like(stepRecord(w, 'disk')[0], { ticketFetched: true });
  t.is((await kubeadmCalls(w)).length, 1);
  t.is(w.disk.formats, 0);
  t.is(w.tpm.events.length, 1);
});

test('key service down, then up: retried with growing delays capped at retry.maxMs, status says waiting meanwhile', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.ks.failures = ['KEYSERVICE_UNREACHABLE', 'KEYSERVICE_UNREACHABLE', 'TIMEOUT', 'RATE_LIMITED', 'KEYSERVICE_UNREACHABLE', 'KEYSERVICE_UNREACHABLE'];
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'join' });
  t.is(w.ks.calls.length, 7);
  // initial 1000, max 8000, random 0.5: 3c/4 + 0.5 * c/4 with c = 1000, 2000, 4000, 8000, 8000, 8000.
  t.deepEqual(w.sleeps.slice(0, 6), [875, 1750, 3500, 7000, 7000, 7000]);
  const retries = w.records.filter((x) => x.outcome === 'retrying');
  t.is(retries.length, 6);
  t.like(retries[0], { step: 'attest', attempt: 1, delayMs: 875, code: 'KEYSERVICE_UNREACHABLE' });
  t.like(stepRecord(w, 'attest').at(-1), { outcome: 'done', attempts: 7 });
  t.true(w.notes.some((n) => /waiting for the key service/.test(n.status ?? '')));
});

test('a refusal by the key service is final: no retry, exit 1 (systemd restarts the unit later)', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.ks.failures = ['MEASUREMENTS_MISMATCH'];
  const r = await runAgent(w.deps());
  t.like(r, { ok: false, exitCode: 1, step: 'attest', code: 'MEASUREMENTS_MISMATCH' });
  t.is(w.ks.calls.length, 1);
  t.deepEqual(w.sleeps, []);
  t.is(w.disk.formats, 0);
});

for (const crashAt of ['inventory', 'classify', 'attest', 'prepare', 'lock', 'kubeadm', 'done-notify'] as const) {
  test(`a failure at ${crashAt}, then a restart in the same boot: resumes and converges (one format, one lock, one join)`, async (t) => {
    const w = await makeWorld();
    t.teardown(w.cleanup);
    w.crashAt = crashAt;
    const first = await runAgent(w.deps());
    t.false(first.ok);
    t.is(first.exitCode, 1);
    const before = await w.status();
    t.is(before.outcome, 'failed');
    const doneBefore = Object.entries(before.steps).filter(([, s]) => s?.state === 'done').map(([n]) => n);
    const attestsBefore = w.ks.calls.length;
    w.records.length = 0;
    const second = await runAgent(w.deps());
    t.like(second, { ok: true, exitCode: 0, path: 'join' });
    t.is(w.disk.formats, 1);
    t.is(w.tpm.events.length, 1);
    t.is(toHex(w.tpm.pcr15), toHex(lockedPcr15(CLUSTER)));
    const joins = (await kubeadmCalls(w)).filter((c) => c.args[0] === 'join');
    t.is(joins.length, 1, 'kubeadm join ran once');
    const after = await w.status();
    t.like(after, { outcome: 'done', runs: 2 });
    for (const s of doneBefore.filter((n) => n !== 'config' && n !== 'attest')) t.true(w.records.some((x) => x.step === s && x.outcome === 'skipped'), `${s} skipped on resume`);
    // The secrets never left memory: until the join is done, a restart attests again.
    const attestedAgain = w.ks.calls.length > attestsBefore;
    t.is(attestedAgain, !doneBefore.includes('join'), `attested again: ${attestedAgain}`);
  });
}

test('a restart after done: nothing is redone, READY=1 again', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  t.true((await runAgent(w.deps())).ok);
  w.records.length = 0;
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, step: 'done' });
  t.is(w.ks.calls.length, 1);
  t.deepEqual(w.records.map((x) => `${x.step} ${x.outcome}`), ['config done', 'config resumed', 'done skipped']);
  t.true(w.notes.filter((n) => n.ready).length === 2);
});

test('a status file from another boot is ignored (a reboot starts over)', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  t.true((await runAgent(w.deps())).ok);
  w.bootId = 'boot-2';
  w.tpm.pcr15 = Buffer.alloc(32); // PCRs reset at reboot
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'rejoin' }, 'second boot: the disk is ours now');
  t.like(await w.status(), { runs: 1, bootId: 'boot-2', role: 'rejoin' });
  t.is(w.disk.formats, 1);
});

test('rejoin where the kubelet unit does not exist: a warning, not a failure', async (t) => {
  const w = await makeWorld({ join: { kubeadm: KUBEADM, configPath: '/nonexistent/x', startKubelet: ['sh', '-c', 'echo "Failed to start kubelet.service: Unit kubelet.service not found." >&2; exit 5'] } });
  t.teardown(w.cleanup);
  w.config.join.kubeletPkiDir = path.join(w.dir, 'pki');
  await ourDisk(w, { joinedAt: 'y' });
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'rejoin' });
  const join = stepRecord(w, 'join')[0] as { warnings: string[] };
  t.regex(join.warnings[0], /does not exist/);
});

test('kubeadm join failing once: reset, certificate reinstalled, joined on the second attempt', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  const deps = w.deps();
  const exec = deps.exec;
  let joins = 0;
  deps.exec = async (cmd, args, opts) => {
    if (cmd === KUBEADM && args[0] === 'join' && joins++ === 0) throw new SextantError({ code: 'EXEC_FAILED', message: 'kubeadm join exited with 1: injected' });
    return exec(cmd, args, opts);
  };
  const r = await runAgent(deps);
  t.true(r.ok);
  t.like(stepRecord(w, 'join')[0], { attempts: 2 });
  t.deepEqual((await kubeadmCalls(w)).map((c) => c.args[0]), ['reset', 'join']);
});

test('deviceMapper false (hosts without dm): the disk step stops after the format/key check; no marker, no bind mounts', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.config.stateDisk.deviceMapper = false;
  const r = await runAgent(w.deps());
  t.true(r.ok);
  t.deepEqual(w.disk.calls.filter((c) => c.startsWith('prepare')), ['prepare /dev/vdb1 open=false']);
  t.like(stepRecord(w, 'disk')[0], { state: 'formatted', marker: 'skipped (no device-mapper)' });
  t.deepEqual(w.disk.bindMounts, []);
  await t.throwsAsync(stat(markerPath(w.config.stateDisk.mountpoint)));
});

test('explicit stateDisk.device + diskUuid: no label search', async (t) => {
  const w = await makeWorld({ stateDisk: { device: '/images/state.img', diskUuid: '01234567-89ab-4cde-8f01-23456789abcd', mountpoint: '/unused', bindMounts: [] } });
  t.teardown(w.cleanup);
  w.config.stateDisk.mountpoint = path.join(w.dir, 'state');
  const r = await runAgent(w.deps());
  t.true(r.ok);
  t.deepEqual(w.disk.calls[0], 'classify /images/state.img');
  t.is(w.ks.calls[0].diskUuid, '01234567-89ab-4cde-8f01-23456789abcd');
});

test('the lock is followed by the confirm round in the session the release opened', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.ks.withConfirm = true;
  t.true((await runAgent(w.deps())).ok);
  t.deepEqual(w.ks.confirms, ['1'.repeat(32)]);
  t.like(stepRecord(w, 'lock')[0], { lock: 'extended', confirm: { confirmed: true } });
});

test('without a confirm session (key from the recovery endpoint) the lock still happens, the confirm is skipped and said so', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  await ourDisk(w, { joinedAt: 'y' });
  w.config.recovery.enabled = true;
  w.ks.withConfirm = true;
  w.ks.failures = Array(50).fill('KEYSERVICE_UNREACHABLE');
  let closed = 0;
  w.recovery = () => ({ secrets: Promise.resolve({ diskKey: Buffer.alloc(32, 0x42), clusterId: CLUSTER }), close: async () => void closed++ });
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'rejoin' }, JSON.stringify(r));
  t.like(stepRecord(w, 'attest').find((x) => x.outcome === 'done'), { source: 'recovery' });
  t.is(closed, 1);
  t.deepEqual(w.ks.confirms, []);
  t.like(stepRecord(w, 'lock')[0], { lock: 'extended', confirm: { skipped: 'no confirm session (key from the recovery endpoint)' } });
  t.is(w.tpm.events.length, 1);
});

test('the recovery endpoint trusts only the measured identities, and accepts a key only if it opens this disk', async (t) => {
  const w = await makeWorld({ recovery: { enabled: true, adminKeys: ['sha256:' + 'cd'.repeat(32)] } });
  t.teardown(w.cleanup);
  await ourDisk(w, { joinedAt: 'y' });
  w.ks.failures = Array(50).fill('KEYSERVICE_UNREACHABLE');
  const proofs: boolean[] = [];
  w.recovery = (o) => {
    t.deepEqual(o.trust, { certificates: ['sha256:' + 'ab'.repeat(32)], publicKeys: ['sha256:' + 'cd'.repeat(32)] });
    const secrets = (async () => {
      proofs.push(await o.proveKey(Buffer.alloc(32, 0x13)), await o.proveKey(Buffer.alloc(32, 0x42)));
      return { diskKey: Buffer.alloc(32, 0x42), clusterId: CLUSTER };
    })();
    return { secrets, close: async () => {} };
  };
  const r = await runAgent(w.deps());
  t.like(r, { ok: true, path: 'rejoin' }, JSON.stringify(r));
  t.deepEqual(proofs, [false, true]);
  t.true(w.disk.calls.includes(`keyOpens ${w.disk.calls.find((c) => c.startsWith('classify'))!.slice('classify '.length)}`));
});

test('recovery is only offered for our disk: a blank disk waits for the key service (a new node needs a join ticket)', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  w.config.recovery.enabled = true;
  let started = 0;
  w.recovery = () => {
    started++;
    return { secrets: new Promise(() => {}), close: async () => {} };
  };
  t.true((await runAgent(w.deps())).ok);
  t.is(started, 0);
});

test('no configuration at all: exit 2, FILE_NOT_FOUND, and the error is where agent status looks', async (t) => {
  const w = await makeWorld();
  t.teardown(w.cleanup);
  const deps = w.deps();
  const saved: unknown[] = [];
  deps.loadConfig = async () => {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: 'no agent configuration' });
  };
  deps.fallbackStatus = (): StatusStore => ({ load: async () => undefined, save: async (s) => void saved.push(s) });
  const r = await runAgent(deps);
  t.like(r, { ok: false, exitCode: 2, step: 'config', code: 'FILE_NOT_FOUND' });
  t.like(saved[0], { outcome: 'failed', lastError: { step: 'config', code: 'FILE_NOT_FOUND' } });
  t.like(w.records[0], { step: 'config', outcome: 'failed', code: 'FILE_NOT_FOUND' });
});

const wiped = (b: Buffer): boolean => b.every((x) => x === 0);

for (const [name, setUp, expect] of [
  ['a run that joins', async () => {}, { ok: true }],
  ['a disk key that does not open our disk', async (w: World) => {
    w.disk.content = 'ours';
    w.disk.headerKey = Buffer.alloc(32, 0x99);
  }, { ok: false, code: 'DISK_WRONG_KEY' }],
  ['a PCR 15 that is not this cluster\'s lock', async (w: World) => {
    w.tpm.pcr15 = Buffer.alloc(32, 0xee);
  }, { ok: false, code: 'CLUSTER_LOCK_MISMATCH' }],
  ['a crash at the lock', async (w: World) => {
    w.crashAt = 'lock';
  }, { ok: false, step: 'lock' }],
] as const) {
  test(`every disk key and kubelet key the run received is zero after it: ${name}`, async (t) => {
    const w = await makeWorld();
    t.teardown(w.cleanup);
    await setUp(w);
    t.like(await runAgent(w.deps()), expect);
    t.true(w.ks.released.length >= 1);
    t.true(w.ks.released.every(wiped), 'disk keys wiped');
    t.true(w.kubeletKeys.length >= 1);
    t.true(w.kubeletKeys.every(wiped), 'kubelet keys wiped');
  });
}
