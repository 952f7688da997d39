/**
 * Rolling upgrades at a real key service (real HTTPS on loopback, a live swtpm through the
 * ESYS engine, the admin unix socket): measurement sets ordered by image version, the overlap
 * window (retire, and expiry on the service's clock), anti-rollback with its high-water mark
 * across a restart, and --force in the audit log (docs/rollout.md).
 */
import anyTest, { type TestFn } from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { adminLoad, adminRetire, adminSocketPath, adminStatus } from '../../keyservice/admin/client.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { resolveConfig } from '../../keyservice/config.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { measurementsKeys, writeSignedMeasurements, type MeasurementsFiles } from '../helpers/keyservice-fixture.js';
import { SEXTANT_BIN } from '../helpers/paths.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { prepareRolloutNode, ROLLOUT_DISK } from '../helpers/rollout-node.js';

interface Ctx {
  dir: string;
  sw: Swtpm;
  tpm: EngineAttestationTpm;
  keys: MeasurementsFiles;
  eventLog: Buffer;
  /** Shared by the tests (ava copies t.context for each test): the service's clock and the service. */
  live: { now: number; svc?: RunningKeyService };
  /** A signed file of `version`: the node's boot (`node`) or one whose kernel command line changed. */
  file(version: string, boot: 'node' | 'changed'): Promise<string>;
  start(): Promise<RunningKeyService>;
}

const test = anyTest as TestFn<Ctx>;

const code = (e: unknown) => (e as { code?: string }).code;

test.before(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-rollout-'));
  const sw = await startSwtpm();
  const node = await prepareRolloutNode(sw, dir);
  const { eventLog, keys } = node;
  const ctx: Ctx = {
    dir,
    sw,
    keys,
    eventLog,
    live: { now: Date.now() },
    tpm: await EngineAttestationTpm.open(sw.tcti),
    file: node.file,
    start: async () => {
      ctx.live.svc = await startKeyService(
        resolveConfig({}, { listen: '127.0.0.1:0', stateDir: path.join(dir, 'state'), measurements: await ctx.file('1.0.0', 'node'), measurementsKey: keys.pubPem, ekCa: [sw.caCertPath, sw.issuerCertPath], rateLimit: { burst: 1000, perSecond: 1000 } }),
        { clock: () => ctx.live.now, watchIntervalMs: 60_000 },
      );
      return ctx.live.svc;
    },
  };
  t.is(node.nodePcr9, node.replayed['9'], 'the fixture\'s PCR 9 is what its event log replays to');
  await ctx.start();
  t.context = ctx;
});

test.after.always(async (t) => {
  const c = t.context;
  if (!c) return;
  await c.live.svc?.close();
  await c.tpm?.dispose();
  await c.sw?.stop();
  await rm(c.dir, { recursive: true, force: true });
});

const attest = (c: Ctx) => attestSteps({ url: c.live.svc!.url, fingerprint: c.live.svc!.fingerprint }, c.tpm, { diskUuid: ROLLOUT_DISK, eventLog: c.eventLog });
const sock = (c: Ctx) => c.live.svc!.adminSocket;

test.serial('the admin socket is the state dir\'s default one, owner-only (0600 in a 0700 folder)', async (t) => {
  const c = t.context;
  t.is(sock(c), adminSocketPath(path.join(c.dir, 'state')));
  t.is((await stat(sock(c))).mode & 0o777, 0o600);
  t.is((await stat(path.dirname(sock(c)))).mode & 0o777, 0o700);
  // A second service on the same state dir (replicas on one host) gets a socket of its own.
  const twin = await startKeyService(resolveConfig({}, { listen: '127.0.0.1:0', stateDir: path.join(c.dir, 'state'), auditLog: path.join(c.dir, 'twin-audit.log'), measurements: await c.file('1.0.0', 'node'), measurementsKey: c.keys.pubPem, ekCa: [c.sw.caCertPath] }));
  try {
    t.is(twin.adminSocket, path.join(path.dirname(sock(c)), `admin-${process.pid}-${twin.port}.sock`));
    t.like(await adminStatus(twin.adminSocket), { highWaterVersion: '1.0.0' });
  } finally {
    await twin.close();
  }
  t.like(await adminStatus(sock(c)), { highWaterVersion: '1.0.0' }, 'the first one still answers on its own');
  t.like(await adminStatus(sock(c)), { highWaterVersion: '1.0.0', sets: [{ imageVersion: '1.0.0', state: 'current' }] });
});

test.serial('overlap: a node on the old image is released while the window is open, refused naming PCR 9 .cmdline once it expires', async (t) => {
  const c = t.context;
  const r = await adminLoad(sock(c), { measurementsFile: await c.file('2.0.0', 'changed'), overlapMs: 3600_000 });
  t.like(r, { loaded: { imageVersion: '2.0.0', state: 'current' }, previous: { imageVersion: '1.0.0', state: 'overlap' } });
  t.truthy((await attest(c)).secrets.diskKey);
  c.live.now += 3600_000 + 1000;
  const e = (await attest(c).then(
    (r) => new Error(`released: ${JSON.stringify(r.warnings)}`),
    (x: unknown) => x as Error,
  )) as Error;
  t.is(code(e), 'MEASUREMENTS_MISMATCH');
  t.regex(e.message, /sextant-test-node 2\.0\.0.*changed components: PCR 9 \.cmdline/);
  t.like((await adminStatus(sock(c))).sets, [{ imageVersion: '2.0.0', state: 'current' }, { imageVersion: '1.0.0', state: 'retired' }]);
});

test.serial('retire ends the window at once: released before, refused naming PCR 9 .cmdline after', async (t) => {
  const c = t.context;
  await adminLoad(sock(c), { measurementsFile: await c.file('3.0.0', 'node'), overlapMs: 0 });
  t.truthy((await attest(c)).secrets.diskKey);
  await adminLoad(sock(c), { measurementsFile: await c.file('4.0.0', 'changed'), overlapMs: 3600_000 });
  t.truthy((await attest(c)).secrets.diskKey, 'released on 3.0.0 in overlap');
  t.like(await adminRetire(sock(c), { imageVersion: '3.0.0' }), { retired: { imageVersion: '3.0.0', state: 'retired' } });
  const e = (await attest(c).then(
    (r) => new Error(`released: ${JSON.stringify(r.warnings)}`),
    (x: unknown) => x as Error,
  )) as Error;
  t.is(code(e), 'MEASUREMENTS_MISMATCH');
  t.regex(e.message, /4\.0\.0.*changed components: PCR 9 \.cmdline/);
  t.is(code(await adminRetire(sock(c), { imageVersion: '4.0.0' }).catch((x: unknown) => x)), 'INVALID_ARGUMENT');
  t.is(code(await adminRetire(sock(c), { imageVersion: '9.9' }).catch((x: unknown) => x)), 'MEASUREMENTS_VERSION_UNKNOWN');
});

test.serial('anti-rollback: an older validly signed file is refused MEASUREMENTS_ROLLBACK, a bad signature SIGNATURE_INVALID; the service keeps 4.0.0', async (t) => {
  const c = t.context;
  const before = await adminStatus(sock(c));
  t.is(code(await adminLoad(sock(c), { measurementsFile: await c.file('1.0.0', 'node') }).catch((x: unknown) => x)), 'MEASUREMENTS_ROLLBACK');
  t.is(code(await adminLoad(sock(c), { measurementsFile: await c.file('4.0.0', 'node') }).catch((x: unknown) => x)), 'MEASUREMENTS_VERSION_REUSED');
  const forged = await c.file('5.0.0', 'node');
  const other = await measurementsKeys();
  t.is(code(await adminLoad(sock(c), { measurementsFile: forged, signatureFile: path.join(c.dir, 'nope.sig') }).catch((x: unknown) => x)), 'SIGNATURE_INVALID');
  await writeSignedMeasurements(path.join(c.dir, 'forged.json'), other.keyPem, { '4': { expected: '00'.repeat(32), enforced: true } }, '9.0.0');
  t.is(code(await adminLoad(sock(c), { measurementsFile: path.join(c.dir, 'forged.json') }).catch((x: unknown) => x)), 'SIGNATURE_INVALID');
  t.deepEqual(await adminStatus(sock(c)), before);
  t.is(code(await attest(c).catch((x: unknown) => x)), 'MEASUREMENTS_MISMATCH', 'still enforcing 4.0.0');
});

test.serial('--force loads the older file; the audit log records it and `keyservice audit verify` passes', async (t) => {
  const c = t.context;
  const cli = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'measurements', 'load', await c.file('1.0.0', 'node'), '--force', '--overlap', '0', '--state-dir', path.join(c.dir, 'state'), '--json'], { reject: false });
  t.is(cli.exitCode, 0, cli.stderr);
  t.like(JSON.parse(cli.stdout), { ok: true, loaded: { imageVersion: '1.0.0', state: 'current' }, previous: { imageVersion: '4.0.0', state: 'retired' } });
  t.truthy((await attest(c)).secrets.diskKey);
  const records = await readAuditRecords(c.live.svc!.auditLog);
  const forced = records.filter((r) => r.decision === 'measurements-load' && r.forced === true);
  t.is(forced.length, 1);
  t.like(forced[0], { highWater: '4.0.0', refusedAs: 'MEASUREMENTS_ROLLBACK', imageVersion: '1.0.0' });
  t.true(records.some((r) => r.decision === 'measurements-load' && r.code === 'MEASUREMENTS_ROLLBACK'), 'the refusal is audited too');
  const verify = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'verify', c.live.svc!.auditLog, '--json'], { reject: false });
  t.is(verify.exitCode, 0, verify.stdout);
  const status = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'measurements', 'status', '--state-dir', path.join(c.dir, 'state')], { reject: false });
  t.regex(status.stdout, /^current\s+1\.0\.0/m);
  t.regex(status.stdout, /high-water mark 4\.0\.0/);
});

test.serial('a restart keeps the high-water mark and the sets: 2.0.0 is still refused as a rollback', async (t) => {
  const c = t.context;
  await c.live.svc!.close();
  await c.start();
  const s = await adminStatus(sock(c));
  t.is(s.highWaterVersion, '4.0.0');
  t.like(s.sets[0], { imageVersion: '4.0.0', state: 'retired' });
  t.is(s.sets.find((x) => x.state === 'current')?.imageVersion, '1.0.0');
  t.is(code(await adminLoad(sock(c), { measurementsFile: await c.file('2.0.0', 'changed') }).catch((x: unknown) => x)), 'MEASUREMENTS_ROLLBACK');
  t.truthy((await attest(c)).secrets.diskKey);
  const saved = JSON.parse(await readFile(path.join(c.dir, 'state', 'measurements-rollout.json'), 'utf8')) as { highWater: { imageVersion: string } };
  t.is(saved.highWater.imageVersion, '4.0.0');
});
