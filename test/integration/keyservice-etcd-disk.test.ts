/**
 * `sextant keyservice disk list | rebind --store etcd`: the admin commands on the replicas'
 * bindings in a real 3-member etcd cluster (Debian's etcd-server) while two real
 * `sextant keyservice --store etcd` replicas run, two live swtpms as nodes A and B attesting
 * with `sextant agent attest` over HTTPS. A disk released via replica 0 is listed by the CLI;
 * a rebind by the CLI makes A refused (DISK_BOUND_ELSEWHERE) and B released at both replicas,
 * audited in the one chain in etcd with the same record as the local path writes.
 */
import anyTest, { type TestFn } from 'ava';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { hash, toHex } from '../../lib/bytes.js';
import { sextant } from '../helpers/cli.js';
import { ekPublicSha256 } from '../helpers/ek-oracle.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { measurementsKeys, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

interface Ctx {
  dir: string;
  etcd: EtcdCluster;
  a: Swtpm;
  b: Swtpm;
  ekA: string;
  ekB: string;
  diskKeySha256: string;
  replicas: KeyServiceChild[];
  store: string[];
}

const test = anyTest as TestFn<Ctx>;
const DISK = 'e7cd0000-0000-4000-8000-0000000d15c0';

test.before(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-etcd-disk-'));
  const [etcd, a, b] = await Promise.all([startEtcdCluster(3), startSwtpm(), startSwtpm()]);
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  // Fresh swtpms, no event log: PCRs 4 and 9 are zero.
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  const store = ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(',')];
  const args = (state: string) => ['--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', measurements, '--measurements-key', keys.pubPem, ...[a, b].flatMap((s) => ['--ek-ca', s.caCertPath, '--ek-ca', s.issuerCertPath]), ...store];
  // One state for both replicas: the first start makes it, the second gets a copy.
  const first = await spawnKeyService(args(path.join(dir, 'state-0')));
  await cp(path.join(dir, 'state-0'), path.join(dir, 'state-1'), { recursive: true });
  const second = await spawnKeyService(args(path.join(dir, 'state-1')));
  const s = await readStateSecrets(path.join(dir, 'state-0'));
  t.context = {
    dir,
    etcd,
    a,
    b,
    ekA: await ekPublicSha256(a, dir),
    ekB: await ekPublicSha256(b, dir),
    diskKeySha256: toHex(hash('sha256', Buffer.from(await opensslHkdf(s.master, s.salt, 'key-' + DISK), 'hex'))),
    replicas: [first, second],
    store,
  };
});

test.after.always(async (t) => {
  const c = t.context;
  if (!c) return;
  await Promise.all(c.replicas.map((r) => r.stop()));
  await Promise.all([c.a?.stop(), c.b?.stop()]);
  await c.etcd?.stop();
  await rm(c.dir, { recursive: true, force: true });
});

async function attest(c: Ctx, tpm: Swtpm, node: string, replica: number) {
  const ks = c.replicas[replica];
  const r = await sextant(['agent', 'attest', '--tcti', tpm.tcti, '--keyservice', ks.listening, '--ca-fingerprint', ks.fingerprint, '--disk-uuid', DISK, '--node-name', node, '--role', 'join', '--no-event-log', '--json']);
  return { ...r, out: JSON.parse(r.stdout) as { ok: boolean; code?: string; message?: string; diskKeySha256?: string } };
}

async function storeAudit(c: Ctx) {
  const out = path.join(c.dir, `export-${Date.now()}.log`);
  const r = await sextant(['keyservice', 'audit', 'export', out, ...c.store, '--json']);
  if (r.exitCode !== 0) throw new Error(`audit export: ${r.stdout} ${r.stderr}`);
  return readAuditRecords(out);
}

test.serial('a disk released via replica 0 is listed by `disk list --store etcd`, as the local store lists it', async (t) => {
  const c = t.context;
  const r = await attest(c, c.a, 'node-a', 0);
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  t.is(r.out.diskKeySha256, c.diskKeySha256);
  const l = await sextant(['keyservice', 'disk', 'list', ...c.store, '--json']);
  t.is(l.exitCode, 0, l.stdout + l.stderr);
  t.like(JSON.parse(l.stdout), { ok: true, bindings: [{ diskUuid: DISK, revision: 1, ekPublicSha256: c.ekA, nodeName: 'node-a', cause: 'first-release' }] });
  t.is((JSON.parse(l.stdout) as { bindings: unknown[] }).bindings.length, 1);
  const text = await sextant(['keyservice', 'disk', 'list', ...c.store, '--disk', DISK]);
  t.regex(text.stdout.trim(), new RegExp(`^${DISK}  ek-sha256 ${c.ekA}  revision 1 \\(first-release, node node-a, \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z\\)$`));
});

test.serial('`disk rebind --store etcd` while both replicas run: A refused (DISK_BOUND_ELSEWHERE) and B released at both; audited in the chain in etcd', async (t) => {
  const c = t.context;
  t.is((await attest(c, c.b, 'node-b', 1)).out.code, 'DISK_BOUND_ELSEWHERE');
  const r = await sextant(['keyservice', 'disk', 'rebind', ...c.store, '--disk', DISK, '--to-ek-sha256', c.ekB, '--reason', 'mainboard replaced', '--json']);
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { ok: true, diskUuid: DISK, from: c.ekA, to: c.ekB, revision: 2, auditLog: `etcd ${c.etcd.endpoints.join(',')} sextant/audit/` });
  for (const replica of [0, 1]) {
    const gotA = await attest(c, c.a, 'node-a', replica);
    t.is(gotA.out.code, 'DISK_BOUND_ELSEWHERE', `A at replica ${replica}: ${gotA.stdout}`);
    t.is(gotA.out.diskKeySha256, undefined);
    const gotB = await attest(c, c.b, 'node-b', replica);
    t.is(gotB.exitCode, 0, `B at replica ${replica}: ${gotB.stdout} ${gotB.stderr}`);
    t.is(gotB.out.diskKeySha256, c.diskKeySha256);
  }
  // The record the local path writes (keyservice/binding/rebind.ts, one implementation), in the one chain.
  const records = await storeAudit(c);
  const rebinds = records.filter((x) => x.decision === 'disk-rebind');
  t.is(rebinds.length, 1);
  t.like(rebinds[0], { decision: 'disk-rebind', diskUuid: DISK, from: c.ekA, to: c.ekB, revision: 2, reason: 'mainboard replaced' });
  const i = records.indexOf(rebinds[0]);
  t.true(records.slice(i + 1).filter((x) => x.decision === 'release').length >= 2, 'the releases to B come after the rebind record');
  t.is((await sextant(['keyservice', 'audit', 'verify', ...c.store, '--json'])).exitCode, 0);
  const l = await sextant(['keyservice', 'disk', 'list', ...c.store, '--disk', DISK, '--json']);
  t.like(JSON.parse(l.stdout), { bindings: [{ diskUuid: DISK, revision: 2, ekPublicSha256: c.ekB, cause: 'admin-rebind', reason: 'mainboard replaced' }] });
  // --unbind over etcd: revision 3, from B to nobody.
  const u = await sextant(['keyservice', 'disk', 'rebind', ...c.store, '--disk', DISK, '--unbind', '--json']);
  t.like(JSON.parse(u.stdout), { ok: true, from: c.ekB, to: null, revision: 3 });
});

test('usage: --store etcd without endpoints, with --state-dir or --audit-log; neither store', async (t) => {
  const c = t.context;
  const cases: [string[], RegExp][] = [
    [['keyservice', 'disk', 'list', '--store', 'etcd'], /needs --etcd-endpoints/],
    [['keyservice', 'disk', 'list', ...c.store, '--state-dir', c.dir], /drop --state-dir/],
    [['keyservice', 'disk', 'list'], /give --state-dir DIR .* or --store etcd/],
    [['keyservice', 'disk', 'list', '--etcd-endpoints', c.etcd.endpoints[0]], /needs --store etcd/],
    [['keyservice', 'disk', 'rebind', ...c.store, '--disk', DISK, '--unbind', '--audit-log', path.join(c.dir, 'x.log')], /drop --audit-log/],
  ];
  for (const [args, re] of cases) {
    const r = await sextant([...args, '--json']);
    t.is(r.exitCode, 2, args.join(' '));
    t.like(JSON.parse(r.stdout), { ok: false, code: 'USAGE' });
    t.regex((JSON.parse(r.stdout) as { message: string }).message, re);
  }
});
