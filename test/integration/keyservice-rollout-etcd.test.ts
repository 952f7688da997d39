/**
 * Rolling upgrades across replicas: two key services on a real 3-member etcd (Debian's
 * etcd-server), a live swtpm node; a load at replica A's admin socket is enforced at replica B,
 * and B refuses a rollback against the high-water mark A raised (docs/rollout.md).
 */
import anyTest, { type TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { adminLoad, adminStatus } from '../../keyservice/admin/client.js';
import { resolveConfig } from '../../keyservice/config.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { attestSteps } from '../helpers/attest-steps.js';
import type { MeasurementsFiles } from '../helpers/keyservice-fixture.js';
import { prepareRolloutNode, ROLLOUT_DISK } from '../helpers/rollout-node.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';

interface Ctx {
  dir: string;
  sw: Swtpm;
  tpm: EngineAttestationTpm;
  keys: MeasurementsFiles;
  eventLog: Buffer;
  /** Shared by the tests (ava copies t.context for each test): the service's clock and the service. */
  live: { now: number; svc?: RunningKeyService };
  etcd: EtcdCluster;
  b: RunningKeyService;
  /** A signed file of `version`: the node's boot (`node`) or one whose kernel command line changed. */
  file(version: string, boot: 'node' | 'changed'): Promise<string>;
  start(): Promise<RunningKeyService>;
}

const test = anyTest as TestFn<Ctx>;

const code = (e: unknown) => (e as { code?: string }).code;

test.before(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-rollout-etcd-'));
  const [etcd, sw] = await Promise.all([startEtcdCluster(3), startSwtpm()]);
  const { eventLog, keys, file } = await prepareRolloutNode(sw, dir);
  const replica = async (name: string) =>
    startKeyService(
      resolveConfig({}, { listen: '127.0.0.1:0', stateDir: path.join(dir, name), measurements: await file('1.0.0', 'node'), measurementsKey: keys.pubPem, ekCa: [sw.caCertPath, sw.issuerCertPath], rateLimit: { burst: 1000, perSecond: 1000 }, store: 'etcd', etcd: { endpoints: etcd.endpoints } }),
      { watchIntervalMs: 60_000 },
    );
  const a = await replica('state-a');
  const b = await replica('state-b');
  t.context = { dir, sw, keys, eventLog, etcd, b, live: { now: 0, svc: a }, tpm: await EngineAttestationTpm.open(sw.tcti), file, start: async () => a };
});

test.after.always(async (t) => {
  const c = t.context;
  if (!c) return;
  await c.live.svc?.close();
  await c.b?.close();
  await c.tpm?.dispose();
  await c.sw?.stop();
  await c.etcd?.stop();
  await rm(c.dir, { recursive: true, force: true });
});

const attestAt = (c: Ctx, s: RunningKeyService) => attestSteps({ url: s.url, fingerprint: s.fingerprint }, c.tpm, { diskUuid: ROLLOUT_DISK, eventLog: c.eventLog });

test.serial('a load at replica A is enforced at replica B; B refuses a rollback against the mark A raised', async (t) => {
  const c = t.context;
  const a = c.live.svc!;
  t.truthy((await attestAt(c, c.b)).secrets.diskKey, 'B releases on 1.0.0');
  const t0 = Date.now();
  await adminLoad(a.adminSocket, { measurementsFile: await c.file('2.0.0', 'changed'), overlapMs: 0 });
  let seen: number | undefined;
  for (let i = 0; i < 100 && seen === undefined; i++) {
    if ((await adminStatus(c.b.adminSocket)).sets[0]?.state === 'current' && (await adminStatus(c.b.adminSocket)).sets[0].imageVersion === '2.0.0') seen = Date.now() - t0;
    else await new Promise((r) => setTimeout(r, 50));
  }
  t.log(`2.0.0 current at replica B ${seen} ms after the load at A`);
  t.truthy(seen !== undefined && seen < 5000);
  const e = (await attestAt(c, c.b).then(
    () => new Error('released'),
    (x: unknown) => x as Error,
  )) as Error;
  t.is(code(e), 'MEASUREMENTS_MISMATCH');
  t.regex(e.message, /2\.0\.0.*changed components: PCR 9 \.cmdline/);
  t.is((await adminStatus(c.b.adminSocket)).highWaterVersion, '2.0.0');
  t.is(code(await adminLoad(c.b.adminSocket, { measurementsFile: await c.file('1.0.0', 'node') }).catch((x: unknown) => x)), 'MEASUREMENTS_ROLLBACK');
  await adminLoad(c.b.adminSocket, { measurementsFile: await c.file('3.0.0', 'node'), overlapMs: 0 });
  for (let i = 0; i < 100 && (await adminStatus(a.adminSocket)).highWaterVersion !== '3.0.0'; i++) await new Promise((r) => setTimeout(r, 50));
  t.truthy((await attestAt(c, a)).secrets.diskKey, 'A enforces the 3.0.0 B loaded');
});
