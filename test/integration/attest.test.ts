/**
 * The attestation protocol end to end: real swtpms (EK certificates from their local CAs),
 * the agent side driven by tpm2-tools, the key service on real HTTPS on loopback. The
 * success path and every attack, each refused with its own code and nothing secret sent.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { rebootSwtpm, startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { Tpm2ToolsAttester } from '../helpers/tpm2-tools-attester.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { measurementsKeys, opensslClusterLock, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';
import { buildEventLog, EV_EVENT_TAG, EV_SEPARATOR, type SynthEvent as LoggedEvent } from '../helpers/eventlog.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { resolveConfig, type KeyServiceConfig } from '../../keyservice/config.js';
import { attest } from '../../agent/attest/client.js';
import { verifyAuditLog } from '../../keyservice/audit/log.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { isSextantError, type SextantErrorCode } from '../../lib/errors.js';
import type { PinnedEndpoint } from '../../agent/attest/transport.js';

const DISK = '3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8';

interface World {
  a: Swtpm;
  b: Swtpm;
  ta: Tpm2ToolsAttester;
  tb: Tpm2ToolsAttester;
  dir: string;
  cfg: KeyServiceConfig;
  svc: RunningKeyService;
  ep: PinnedEndpoint;
  clock: { now: number };
  events: LoggedEvent[];
  csr: string;
  caCertPem: string;
}
let w: World;

const bootEvents: LoggedEvent[] = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 4, type: EV_EVENT_TAG, data: Buffer.from('uki authenticode stand-in') },
  { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('console=ttyS0 root=/dev/vda2') },
];

/** Measures the events into the TPM the way firmware would (PCR_Extend of H(data)). */
async function measure(t: Tpm2ToolsAttester, events: LoggedEvent[]): Promise<void> {
  for (const e of events) await t.extendPcr(e.pcr, toHex(hash('sha256', e.data)));
}

test.before(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-int-'));
  const [a, b] = await Promise.all([startSwtpm(), startSwtpm()]);
  const ta = await Tpm2ToolsAttester.create(a.tcti);
  const tb = await Tpm2ToolsAttester.create(b.tcti);
  await measure(ta, bootEvents);
  await measure(tb, bootEvents);
  const pcrs = await ta.readPcrs();
  const keys = await measurementsKeys(dir);
  const expected: Record<string, { expected: string; enforced: boolean }> = {};
  for (const i of [4, 9, 11, 12, 13]) expected[String(i)] = { expected: pcrs[String(i)], enforced: true };
  expected['1'] = { expected: pcrs['1'], enforced: false };
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, expected);
  const ca = await makeClusterCa(dir);
  const clock = { now: Date.now() };
  const cfg = resolveConfig(
    {},
    {
      listen: '127.0.0.1:0',
      stateDir: path.join(dir, 'state'),
      measurements,
      measurementsKey: keys.pubPem,
      ekCa: [a.caCertPath, a.issuerCertPath, b.caCertPath, b.issuerCertPath],
      maxRequestBytes: 256 * 1024,
      rateLimit: { burst: 1000, perSecond: 100 },
      join: { apiServerEndpoint: '10.0.0.1:6443', caCert: ca.caCert, caKey: ca.caKey, tokenTtlSeconds: 600, certDays: 1 },
    },
  );
  const svc = await startKeyService(cfg, { clock: () => clock.now });
  w = { a, b, ta, tb, dir, cfg, svc, ep: { url: svc.url, fingerprint: svc.fingerprint }, clock, events: bootEvents, csr: ca.csr, caCertPem: await readFile(ca.caCert, 'utf8') };
});

test.after.always(async () => {
  await w?.svc.close();
  await w?.ta.dispose();
  await w?.tb.dispose();
  await w?.a.stop();
  await w?.b.stop();
  if (w) await rm(w.dir, { recursive: true, force: true });
});


async function expectedDiskKeyHex(diskUuid = DISK): Promise<string> {
  const s = await readStateSecrets(w.cfg.stateDir);
  return opensslHkdf(s.master, s.salt, 'key-' + diskUuid);
}

/** Runs an attack; it must fail with `code`, and the refusal must carry nothing secret. */
async function refused(t: import('ava').ExecutionContext, code: SextantErrorCode, run: () => Promise<unknown>): Promise<void> {
  const secretHex = await expectedDiskKeyHex();
  const secretB64 = Buffer.from(secretHex, 'hex').toString('base64');
  const e = await t.throwsAsync(run);
  t.true(isSextantError(e), String(e));
  t.is((e as { code?: string }).code, code, (e as Error).message);
  t.false((e as Error).message.includes(secretHex) || (e as Error).message.includes(secretB64));
}

test.serial('success: the disk key is HKDF(master, salt, "key-"+uuid) by openssl; the join ticket names the cluster CA', async (t) => {
  const r = await attest(w.ta, { endpoint: w.ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', csr: w.csr, eventLog: buildEventLog(w.events), retry: { attempts: 1 } });
  t.is(r.diskKey.toString('hex'), await expectedDiskKeyHex());
  const s = await readStateSecrets(w.cfg.stateDir);
  t.is(r.clusterId, await opensslHkdf(s.master, s.salt, 'cluster-id'));
  t.is(r.joinTicket?.caCertHash, 'sha256:' + toHex(hash('sha256', new X509Certificate(w.caCertPem).publicKey.export({ type: 'spki', format: 'der' }))));
  t.regex(r.joinTicket!.token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  t.true(new X509Certificate(r.joinTicket!.kubeletCert!).checkIssued(new X509Certificate(w.caCertPem)));
  t.is(r.warnings.length, 0);
});

test.serial('nonce replayed: NONCE_REPLAYED', async (t) => {
  const first = await attestSteps(w.ep, w.ta);
  await refused(t, 'NONCE_REPLAYED', () => attestSteps(w.ep, w.ta, { nonce: first.nonce }));
});

test.serial('nonce expired (61 s between nonce and use): NONCE_EXPIRED', async (t) => {
  await refused(t, 'NONCE_EXPIRED', () => attestSteps(w.ep, w.ta, { afterNonce: () => void (w.clock.now += 61_000) }));
  w.clock.now = Date.now();
});

test.serial('nonce never issued: NONCE_UNKNOWN', async (t) => {
  await refused(t, 'NONCE_UNKNOWN', () => attestSteps(w.ep, w.ta, { nonce: Buffer.alloc(32, 9) }));
});

test.serial('quote signed by another AK of the same TPM: QUOTE_SIGNATURE_INVALID', async (t) => {
  const other = await w.ta.createOtherAk();
  await refused(t, 'QUOTE_SIGNATURE_INVALID', () => attestSteps(w.ep, w.ta, { quote: (d) => w.ta.quote(d, other) }));
});

test.serial('AK from another swtpm than the EK: credential activation fails, AK_NOT_BOUND', async (t) => {
  await refused(t, 'AK_NOT_BOUND', () => attestSteps(w.ep, w.tb, { ekFrom: w.ta, guessCredentialOnFailure: true }));
});

test.serial('EK certificate from a CA the service does not trust: EK_CERT_UNTRUSTED', async (t) => {
  const only = await startKeyService({ ...w.cfg, ekCa: [w.b.caCertPath, w.b.issuerCertPath], auditLog: path.join(w.dir, 'audit-2.log') }, {});
  try {
    await refused(t, 'EK_CERT_UNTRUSTED', () => attestSteps({ url: only.url, fingerprint: only.fingerprint }, w.ta));
  } finally {
    await only.close();
  }
});

test.serial('event log altered (replay differs from the quote): EVENTLOG_REPLAY_MISMATCH', async (t) => {
  const altered = w.events.map((e, i) => (i === 2 ? { ...e, data: Buffer.from('console=ttyS0 root=/dev/vda2 init=/bin/sh') } : e));
  await refused(t, 'EVENTLOG_REPLAY_MISMATCH', () => attestSteps(w.ep, w.ta, { eventLog: buildEventLog(altered) }));
});

test.serial('PCR values that do not match the quoted digest: PCR_DIGEST_MISMATCH', async (t) => {
  await refused(t, 'PCR_DIGEST_MISMATCH', () => attestSteps(w.ep, w.ta, { mutate: (r) => ({ ...r, pcrs: { ...r.pcrs, '9': 'ab'.repeat(32) } }) }));
});

test.serial('request over the size limit: REQUEST_TOO_LARGE', async (t) => {
  await refused(t, 'REQUEST_TOO_LARGE', () => attestSteps(w.ep, w.ta, { eventLog: Buffer.alloc(300 * 1024, 1) }));
});

test.serial('restart: the same disk key for the same disk UUID', async (t) => {
  const before = await attestSteps(w.ep, w.ta, { diskUuid: DISK });
  await w.svc.close();
  w.svc = await startKeyService(w.cfg, { clock: () => w.clock.now });
  w.ep = { url: w.svc.url, fingerprint: w.svc.fingerprint };
  const after = await attestSteps(w.ep, w.ta, { diskUuid: DISK });
  t.is(after.secrets.diskKey, before.secrets.diskKey);
  t.is(Buffer.from(after.secrets.diskKey, 'base64').toString('hex'), await expectedDiskKeyHex());
});

test.serial('PCR 15 locked: a join is refused (CLUSTER_LOCK_SET); a rejoin at the lock gets the disk key and no join ticket', async (t) => {
  await w.ta.pcrEvent(15, Buffer.from(w.svc.clusterId, 'hex'));
  t.is((await w.ta.readPcrs())['15'], await opensslClusterLock(w.svc.clusterId));
  await refused(t, 'CLUSTER_LOCK_SET', () => attestSteps(w.ep, w.ta, { role: 'join' }));
  const r = await attestSteps(w.ep, w.ta, { role: 'rejoin', diskUuid: DISK, csr: w.csr });
  t.is(Buffer.from(r.secrets.diskKey, 'base64').toString('hex'), await expectedDiskKeyHex());
  t.is(r.secrets.clusterId, w.svc.clusterId);
  t.is(r.secrets.joinTicket, undefined, 'a rejoining node keeps its kubelet credentials on the state disk');
});

test.serial('reboot of a joined node (PCR 15 back to 0): a rejoin gets the same disk key and no join ticket', async (t) => {
  await rebootSwtpm(w.a);
  w.ta.forgetKeys();
  t.is((await w.ta.readPcrs())['15'], '00'.repeat(32));
  await measure(w.ta, w.events);
  const r = await attestSteps(w.ep, w.ta, { role: 'rejoin', diskUuid: DISK, csr: w.csr, eventLog: buildEventLog(w.events) });
  t.is(Buffer.from(r.secrets.diskKey, 'base64').toString('hex'), await expectedDiskKeyHex());
  t.is(r.secrets.joinTicket, undefined);
  const last = (await readFile(w.svc.auditLog, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).at(-1);
  t.like(last, { decision: 'release', role: 'rejoin', clusterLock: 'unlocked', diskUuid: DISK });
});

test.serial("rejoin with another cluster's PCR 15: CLUSTER_LOCK_MISMATCH", async (t) => {
  await w.tb.pcrEvent(15, Buffer.alloc(32, 0xee));
  await refused(t, 'CLUSTER_LOCK_MISMATCH', () => attestSteps(w.ep, w.tb, { role: 'rejoin' }));
  await refused(t, 'CLUSTER_LOCK_SET', () => attestSteps(w.ep, w.tb, { role: 'join' }));
});

test.serial('PCR 9 extended with an extra value (enforced): MEASUREMENTS_MISMATCH, even with an honest log', async (t) => {
  const extra: LoggedEvent = { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('extra initrd') };
  await measure(w.ta, [extra]);
  await refused(t, 'MEASUREMENTS_MISMATCH', () => attestSteps(w.ep, w.ta, { role: 'rejoin', eventLog: buildEventLog([...w.events, extra]) }));
});

test.serial('the audit log holds every decision, chained; the CLI verifies it and sees an edit', async (t) => {
  const r = await verifyAuditLog(w.svc.auditLog);
  t.true(r.count > 20);
  const lines = (await readFile(w.svc.auditLog, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { decision: string; code?: string });
  const codes = new Set(lines.filter((l) => l.decision === 'refuse').map((l) => l.code));
  for (const c of ['NONCE_REPLAYED', 'NONCE_EXPIRED', 'QUOTE_SIGNATURE_INVALID', 'AK_NOT_BOUND', 'EVENTLOG_REPLAY_MISMATCH', 'CLUSTER_LOCK_SET', 'CLUSTER_LOCK_MISMATCH', 'MEASUREMENTS_MISMATCH']) t.true(codes.has(c), c);
  const text = await readFile(w.svc.auditLog, 'utf8');
  t.false(text.includes(Buffer.from(await expectedDiskKeyHex(), 'hex').toString('base64')));
  const copy = path.join(w.dir, 'audit-copy.log');
  await writeFile(copy, text.replace('"decision":"refuse"', '"decision":"release"'));
  const v = await run(process.execPath, [path.join(process.cwd(), 'bin/sextant.js'), 'keyservice', 'audit', 'verify', copy, '--json'], { okExitCodes: [1] });
  t.like(JSON.parse(v.stdout), { ok: false, code: 'AUDIT_LOG_BROKEN' });
});
