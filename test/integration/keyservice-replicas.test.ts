/**
 * Key service replicas on a real etcd: a 3-member cluster (Debian's etcd-server) on loopback
 * and three real `sextant keyservice --store etcd` processes sharing one state (master
 * secret, salt, TLS key copied), attested by a live swtpm through the ESYS engine.
 */
import anyTest, { type TestFn } from 'ava';
import { execa } from 'execa';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { postJson, type PinnedEndpoint } from '../../agent/attest/transport.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import { run } from '../../lib/exec.js';
import { ROUTES } from '../../protocol/messages.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { measureBoot } from '../helpers/measured-boot.js';
import { measurementsKeys, writeSignedMeasurements, type MeasurementsFiles } from '../helpers/keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { SEXTANT_BIN } from '../helpers/paths.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

interface Ctx {
  dir: string;
  etcd: EtcdCluster;
  sw: Swtpm;
  tpm: EngineAttestationTpm;
  keys: MeasurementsFiles;
  eventLog: Buffer;
  replayed: Record<string, string>;
  replicas: (KeyServiceChild | undefined)[];
  start(i: number): Promise<KeyServiceChild>;
  ep(i: number): PinnedEndpoint;
}

const test = anyTest as TestFn<Ctx>;

const DISK = 'e7cd0000-0000-4000-8000-000000000001';

test.before(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-replicas-'));
  const [etcd, sw] = await Promise.all([startEtcdCluster(3), startSwtpm()]);
  const { eventLog, replayed, enforced } = await measureBoot(sw.tcti);
  const keys = await measurementsKeys(dir);
  // One state for all replicas (as one Secret mounted by each): made once, copied.
  const first = path.join(dir, 'state-0');
  const made = await openStateDir(first);
  made.masterSecret.fill(0);
  const config = path.join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ rateLimit: { burst: 10_000, perSecond: 10_000 } }));
  const ctx: Ctx = {
    dir,
    etcd,
    sw,
    keys,
    eventLog,
    replayed,
    tpm: await EngineAttestationTpm.open(sw.tcti),
    replicas: [],
    start: async (i) => {
      const state = path.join(dir, `state-${i}`);
      if (i > 0) await cp(first, state, { recursive: true, force: false, errorOnExist: false });
      const m = path.join(dir, `measurements-${i}.json`);
      await writeSignedMeasurements(m, keys.keyPem, enforced);
      const r = await spawnKeyService(['--config', config, '--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', m, '--measurements-key', keys.pubPem, '--ek-ca', sw.caCertPath, '--ek-ca', sw.issuerCertPath, '--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(',')]);
      ctx.replicas[i] = r;
      return r;
    },
    ep: (i) => ({ url: ctx.replicas[i]!.listening, fingerprint: ctx.replicas[i]!.fingerprint, timeoutMs: 15_000 }),
  };
  await Promise.all([0, 1, 2].map((i) => ctx.start(i)));
  t.context = ctx;
});

test.after.always(async (t) => {
  const c = t.context;
  if (!c) return;
  await Promise.all(c.replicas.map((r) => r?.stop()));
  await c.tpm?.dispose();
  await c.sw?.stop();
  await c.etcd?.stop();
  await rm(c.dir, { recursive: true, force: true });
});

async function auditFromStore(c: Ctx) {
  const out = path.join(c.dir, `export-${Date.now()}-${Math.random()}.log`);
  const r = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'export', out, '--store', 'etcd', '--etcd-endpoints', c.etcd.endpoints.join(','), '--json'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`audit export: ${r.stdout} ${r.stderr}`);
  return { records: await readAuditRecords(out), file: out, summary: JSON.parse(r.stdout) as { records: number } };
}

async function verifyStore(c: Ctx) {
  const r = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'verify', '--store', 'etcd', '--etcd-endpoints', c.etcd.endpoints.join(','), '--json'], { reject: false });
  return { ok: r.exitCode === 0, out: JSON.parse(r.stdout || '{}') as { records?: number; code?: string } };
}

test.serial('round 1 at replica A, round 2 at replica B: released, one audit chain in etcd holds both', async (t) => {
  const c = t.context;
  const r = await attestSteps(c.ep(0), c.tpm, { diskUuid: DISK, eventLog: c.eventLog, at: { nonce: c.ep(0), challenge: c.ep(0), complete: c.ep(1) } });
  const again = await attestSteps(c.ep(2), c.tpm, { diskUuid: DISK, eventLog: c.eventLog, at: { nonce: c.ep(1), challenge: c.ep(2), complete: c.ep(0) } });
  // Every replica derives the same key from the one master secret.
  t.is(again.secrets.diskKey, r.secrets.diskKey);
  const { records } = await auditFromStore(c);
  const releases = records.filter((x) => x.decision === 'release' && x.diskUuid === DISK);
  t.true(releases.length >= 2);
  const v = await verifyStore(c);
  t.true(v.ok, JSON.stringify(v.out));
  t.true((v.out.records ?? 0) >= records.length);
  // Bound at the first release, in etcd (read by etcdctl): replica B and C saw replica A's binding.
  t.deepEqual(
    releases.map((x) => (x as { diskBinding?: { revision: number; state: string } }).diskBinding?.state),
    ['bound-now', ...releases.slice(1).map(() => 'bound-to-this-node')],
  );
  const keysInEtcd = await run('etcdctl', ['--endpoints', c.etcd.endpoints.join(','), 'get', '--prefix', `sextant/binding/${DISK}/`, '--keys-only'], { env: { ETCDCTL_API: '3' } });
  t.deepEqual(keysInEtcd.stdout.split('\n').filter(Boolean), [`sextant/binding/${DISK}/0000000001`]);
});

test.serial('the nonce race: one nonce used at two replicas at once, exactly one is released', async (t) => {
  const c = t.context;
  const n = (await postJson(c.ep(0), ROUTES.nonce, {})) as { nonce: string };
  const nonce = Buffer.from(n.nonce, 'base64');
  let arrived = 0;
  let go!: () => void;
  const barrier = new Promise<void>((r) => (go = r));
  const wait = async () => {
    if (++arrived === 2) go();
    await barrier;
  };
  const results = await Promise.allSettled([
    attestSteps(c.ep(1), c.tpm, { nonce, diskUuid: DISK, eventLog: c.eventLog, beforeComplete: wait }),
    attestSteps(c.ep(2), c.tpm, { nonce, diskUuid: DISK, eventLog: c.eventLog, beforeComplete: wait }),
  ]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.is(won.length, 1);
  t.is(lost.length, 1);
  t.is((lost[0].reason as { code?: string }).code, 'NONCE_REPLAYED');
});

test.serial('a replica killed with -9 in the middle of an attestation: the retry at another replica is released, nothing acknowledged is lost', async (t) => {
  const c = t.context;
  const victim = c.replicas[1]!;
  let sessionId = '';
  const first = attestSteps(c.ep(1), c.tpm, {
    diskUuid: DISK,
    eventLog: c.eventLog,
    mutate: (req) => {
      sessionId = req.sessionId;
      // Killed just after round 2 went out: while it verifies, audits, or has just answered.
      setImmediate(() => process.kill(victim.child.pid!, 'SIGKILL'));
      return req;
    },
  }).then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  const outcome = await first;
  await victim.child;
  c.replicas[1] = undefined;
  // The agent's retry: start again (fresh nonce, round 1) at another replica.
  const retry = await attestSteps(c.ep(2), c.tpm, { diskUuid: DISK, eventLog: c.eventLog });
  t.truthy(retry.secrets.diskKey);
  const { records } = await auditFromStore(c);
  if (outcome.ok) t.true(records.some((x) => x.decision === 'release' && x.sessionId === sessionId), 'a release the client saw is in the audit log');
  t.true((await verifyStore(c)).ok);
  await c.start(1);
  t.truthy(await attestSteps(c.ep(1), c.tpm, { diskUuid: DISK, eventLog: c.eventLog }));
});

test.serial('an etcd member killed with -9: every replica goes on releasing; it rejoins', async (t) => {
  const c = t.context;
  await c.etcd.kill(0);
  for (const i of [0, 1, 2]) {
    const r = await attestSteps(c.ep(i), c.tpm, { diskUuid: DISK, eventLog: c.eventLog, at: { complete: c.ep((i + 1) % 3) } });
    t.truthy(r.secrets.diskKey);
  }
  await c.etcd.start(0);
  t.true((await verifyStore(c)).ok);
});

test.serial('a new signed measurements file loaded at one replica is in force at the others within seconds (watch)', async (t) => {
  const c = t.context;
  // Version 2.0.0 says PCR 9 is warn-only with another value: an attestation matched against
  // it carries a warning naming it (the old set enforces PCR 9 and warns about nothing).
  const t0 = Date.now();
  await writeSignedMeasurements(path.join(c.dir, 'measurements-0.json'), c.keys.keyPem, { '4': { expected: c.replayed['4'], enforced: true }, '9': { expected: 'ab'.repeat(32), enforced: false } }, '2.0.0');
  const inForce = async (i: number) => {
    for (let k = 0; k < 60; k++) {
      const r = await attestSteps(c.ep(i), c.tpm, { diskUuid: DISK, eventLog: c.eventLog });
      if (r.warnings.some((w) => w.includes('sextant-test-node 2.0.0'))) return Date.now() - t0;
      await sleep(100);
    }
    return undefined;
  };
  const at = [await inForce(0), await inForce(1), await inForce(2)];
  t.log(`in force at replicas 0, 1, 2 after ${at.join(', ')} ms (file poll 1 s, then the etcd watch)`);
  t.true(at.every((ms) => ms !== undefined && ms < 10_000));
  // Every replica audited the reload; two of them say it came from another replica.
  const reloads = (await auditFromStore(c)).records.filter((x) => x.decision === 'measurements-reload' && String(x.accepted).includes('2.0.0'));
  t.deepEqual(reloads.map((x) => x.from).sort(), ['file', 'store', 'store']);
});

test.serial('quorum lost: refused with STORE_UNAVAILABLE, nothing released; released again when quorum returns', async (t) => {
  const c = t.context;
  const before = (await auditFromStore(c)).summary.records;
  // Nonce and round 1 before the loss, round 2 after it: refused, not released on a record it cannot write.
  let t0 = 0;
  const complete = await attestSteps(c.ep(0), c.tpm, {
    diskUuid: DISK,
    eventLog: c.eventLog,
    at: { complete: c.ep(1) },
    beforeComplete: async () => {
      await c.etcd.kill(1);
      await c.etcd.kill(2);
      t0 = Date.now();
    },
  }).catch((e: unknown) => e);
  t.is((complete as { code?: string }).code, 'STORE_UNAVAILABLE');
  const fresh = await postJson(c.ep(2), ROUTES.nonce, {}).catch((e: unknown) => e);
  t.is((fresh as { code?: string }).code, 'STORE_UNAVAILABLE');
  t.log(`two refusals without quorum took ${Date.now() - t0} ms`);
  await Promise.all([c.etcd.start(1), c.etcd.start(2)]);
  // The replicas reconnect by themselves (the client's circuit breaker reopens within seconds).
  let released;
  for (let i = 0; i < 40 && !released; i++) {
    released = await attestSteps(c.ep(2), c.tpm, { diskUuid: DISK, eventLog: c.eventLog, at: { complete: c.ep(0) } }).catch(() => undefined);
    if (!released) await sleep(250);
  }
  t.truthy(released?.secrets.diskKey);
  const after = await auditFromStore(c);
  // Nothing from the outage reached the chain as a release: the one new release is the retry's.
  const newReleases = after.records.slice(before).filter((x) => x.decision === 'release');
  t.is(newReleases.length, 1);
  t.true((await verifyStore(c)).ok);
});
