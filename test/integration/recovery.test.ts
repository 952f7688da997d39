/**
 * Recovery end to end: the node's recovery endpoint on a real swtpm through the koffi -> ESYS
 * engine, real HTTPS on 127.0.0.1, the admin as the real `sextant recover` process (and as
 * the library, to compose attacks). The node must get exactly the disk key the key service
 * releases to it; every refusal happens before anything secret is sent.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { EngineAttestationTpm } from '../../agent/attest/engine-tpm.js';
import type { AttestationTpm } from '../../agent/attest/tpm.js';
import { attest } from '../../agent/attest/client.js';
import { postJson } from '../../agent/attest/transport.js';
import { startRecoveryServer, type RecoveredSecrets, type RecoveryServer } from '../../agent/recovery/server.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { resolveConfig } from '../../keyservice/config.js';
import { deriveDiskKey } from '../../keyservice/derive.js';
import { loadReferenceSet } from '../../keyservice/measurements.js';
import { recoverNode } from '../../keyservice/recover.js';
import { loadCaCertificates } from '../../keyservice/verify/ek-cert.js';
import { RECOVERY_ROUTES, type RecoveryReleaseRequest } from '../../protocol/recovery-messages.js';
import { generateEphemeralKey, qualifyingData, seal } from '../../protocol/seal.js';
import { hash, toHex } from '../../lib/bytes.js';
import { isSextantError } from '../../lib/errors.js';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

const DISK = '5e1f0c2a-7b3d-4e8f-9a01-b2c3d4e5f607';
const ZERO = '00'.repeat(32);

let swtpm: Swtpm;
let tpm: EngineAttestationTpm;
let dir: string;
let ks: RunningKeyService;
let good: string;
let wrong: string;
let pubPem: string;
let node: RecoveryServer;
const nodeLog: string[] = [];

test.before(async () => {
  swtpm = await startSwtpm();
  tpm = await EngineAttestationTpm.open(swtpm.tcti);
  dir = await mkdtemp(path.join(os.tmpdir(), 'recovery-int-'));
  const keys = await measurementsKeys(dir);
  pubPem = keys.pubPem;
  // A fresh swtpm boots nothing: PCRs 4 and 9 are zero. `wrong` expects another PCR 9.
  good = path.join(dir, 'measurements.json');
  wrong = path.join(dir, 'wrong-measurements.json');
  await writeSignedMeasurements(good, keys.keyPem, { '4': { expected: ZERO, enforced: true }, '9': { expected: ZERO, enforced: true } });
  await writeSignedMeasurements(wrong, keys.keyPem, { '4': { expected: ZERO, enforced: true }, '9': { expected: 'ab'.repeat(32), enforced: true } });
  ks = await startKeyService(
    resolveConfig({}, { listen: '127.0.0.1:0', stateDir: path.join(dir, 'state'), measurements: good, measurementsKey: pubPem, ekCa: [swtpm.caCertPath, swtpm.issuerCertPath] }),
  );
  node = await startRecoveryServer({ tpm, diskUuid: DISK, nodeName: 'worker-7', host: '127.0.0.1', port: 0, log: (l) => nodeLog.push(l) });
});

test.after.always(async () => {
  await node?.close();
  await ks?.close();
  await tpm?.dispose();
  await swtpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const master = () => path.join(dir, 'state', 'master-secret');
const recoverArgs = (o: { url?: string; fingerprint?: string; measurements?: string } = {}) => [
  'recover',
  '--node', o.url ?? `https://127.0.0.1:${node.port}`,
  '--node-fingerprint', o.fingerprint ?? node.fingerprint,
  '--master-secret', master(),
  '--measurements', o.measurements ?? good,
  '--measurements-key', pubPem,
  '--ek-ca', swtpm.caCertPath,
  '--ek-ca', swtpm.issuerCertPath,
  '--json',
];

/** Whether `p` is still pending after the event loop had a chance to settle it. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  return Promise.race([p.then(() => false, () => false), new Promise<boolean>((r) => setTimeout(() => r(true), 50))]);
}

/** The admin library against a node, recording which routes were posted. */
async function adminRun(target: RecoveryServer, o: { tamperRelease?: (r: RecoveryReleaseRequest) => RecoveryReleaseRequest } = {}) {
  const posted: string[] = [];
  const s = await readStateSecrets(path.join(dir, 'state'));
  const ep = { url: `https://127.0.0.1:${target.port}`, fingerprint: target.fingerprint, peer: 'node' };
  const run = recoverNode({
    post: (route, body) => {
      posted.push(route);
      return postJson(ep, route, route === RECOVERY_ROUTES.release && o.tamperRelease ? o.tamperRelease(body as RecoveryReleaseRequest) : body);
    },
    node: ep.url,
    masterSecret: s.master,
    salt: s.salt,
    references: [await loadReferenceSet(good, good + '.sig', await readFile(pubPem, 'utf8'))],
    ekCas: loadCaCertificates([await readFile(swtpm.caCertPath, 'utf8'), await readFile(swtpm.issuerCertPath, 'utf8')]),
  });
  return { run, posted };
}

/** A node whose TPM answers are altered by `quote` (the rest is the real swtpm). */
async function evilNode(quote: AttestationTpm['quote']): Promise<RecoveryServer> {
  const evil: AttestationTpm = {
    ekCertificate: () => tpm.ekCertificate(),
    akPublic: () => tpm.akPublic(),
    activateCredential: (b, s) => tpm.activateCredential(b, s),
    quote,
    dispose: async () => undefined,
  };
  return startRecoveryServer({ tpm: evil, diskUuid: DISK, host: '127.0.0.1', port: 0 });
}

test.serial('wrong node fingerprint: exit 1 TLS_FINGERPRINT_MISMATCH, and the node received no request', async (t) => {
  const before = nodeLog.length;
  const r = await sextant(recoverArgs({ fingerprint: 'sha256:' + 'ab'.repeat(32) }));
  t.is(r.exitCode, 1, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'TLS_FINGERPRINT_MISMATCH' });
  t.deepEqual(nodeLog.slice(before).filter((l) => l.includes('/v1/')), []);
  t.true(await pending(node.secrets));
  // The fingerprint the admin needs is in the node's log.
  t.true(nodeLog.some((l) => l.includes(`certificate ${node.fingerprint}`)));
});

test.serial('measurements the node does not match: exit 1 MEASUREMENTS_MISMATCH naming PCR 9, nothing released', async (t) => {
  const before = nodeLog.length;
  const r = await sextant(recoverArgs({ measurements: wrong }));
  t.is(r.exitCode, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { code: string; message: string };
  t.is(out.code, 'MEASUREMENTS_MISMATCH');
  t.regex(out.message, /PCR 9/);
  const routes = nodeLog.slice(before).filter((l) => l.includes('/v1/'));
  t.true(routes.some((l) => l.includes(RECOVERY_ROUTES.quote)), routes.join('\n'));
  t.false(routes.some((l) => l.includes(RECOVERY_ROUTES.release)), routes.join('\n'));
  t.true(await pending(node.secrets));
});

test.serial('forged quote (attest bytes altered after signing): QUOTE_SIGNATURE_INVALID, nothing released', async (t) => {
  const evil = await evilNode(async (d) => {
    const q = await tpm.quote(d);
    const attest = Buffer.from(q.attest);
    attest[attest.length - 1] ^= 1; // last byte of the signed pcrDigest
    return { ...q, attest };
  });
  try {
    const { run, posted } = await adminRun(evil);
    await t.throwsAsync(run, { code: 'QUOTE_SIGNATURE_INVALID' });
    t.false(posted.includes(RECOVERY_ROUTES.release));
    t.true(await pending(evil.secrets));
  } finally {
    await evil.close();
  }
});

test.serial('replayed quote (signed for an earlier nonce): QUOTE_NONCE_MISMATCH, nothing released', async (t) => {
  const recorded = await tpm.quote(qualifyingData(randomBytes(32), generateEphemeralKey().publicKey));
  const evil = await evilNode(async () => recorded);
  try {
    const { run, posted } = await adminRun(evil);
    await t.throwsAsync(run, { code: 'QUOTE_NONCE_MISMATCH' });
    t.false(posted.includes(RECOVERY_ROUTES.release));
  } finally {
    await evil.close();
  }
});

test.serial('the node refuses an answer not sealed to its one-time key: SEAL_INVALID, still waiting', async (t) => {
  const { run } = await adminRun(node, {
    tamperRelease: (r) => {
      const other = generateEphemeralKey();
      // Same shape and context, but to a key the node does not hold.
      return { ...r, sealed: seal(Buffer.from(JSON.stringify({ diskKey: randomBytes(32).toString('base64'), clusterId: 'ab'.repeat(32) })), other.publicKey, randomBytes(32)) };
    },
  });
  await t.throwsAsync(run, { code: 'SEAL_INVALID' });
  t.true(await pending(node.secrets));
});

test.serial('limits: an oversized request is REQUEST_TOO_LARGE, a burst past the bucket is RATE_LIMITED', async (t) => {
  const limited = await startRecoveryServer({ tpm, diskUuid: DISK, host: '127.0.0.1', port: 0, maxRequestBytes: 1024, rateLimit: { burst: 2, perSecond: 0.001 } });
  try {
    const ep = { url: `https://127.0.0.1:${limited.port}`, fingerprint: limited.fingerprint };
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1, nonce: 'A'.repeat(4000) }), { code: 'REQUEST_TOO_LARGE' });
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'PROTOCOL_INVALID' });
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'RATE_LIMITED' });
  } finally {
    await limited.close();
  }
});

test.serial('success: the node gets the disk key the key service releases to it (= HKDF by openssl), then the endpoint closes', async (t) => {
  // The key service's answer to the same node and disk, over its own protocol.
  const released = await attest(tpm, { endpoint: { url: ks.url, fingerprint: ks.fingerprint }, diskUuid: DISK, role: 'join', nodeName: 'worker-7', retry: { attempts: 1 } });
  const s = await readStateSecrets(path.join(dir, 'state'));
  const oracle = await opensslHkdf(s.master, s.salt, 'key-' + DISK);
  t.is(released.diskKey.toString('hex'), oracle);

  const r = await sextant(recoverArgs());
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; diskUuid: string; diskKeySha256: string; clusterId: string; clusterLock: string };
  t.like(out, { ok: true, diskUuid: DISK, clusterLock: 'unlocked', clusterId: ks.clusterId });
  t.is(out.diskKeySha256, toHex(hash('sha256', Buffer.from(oracle, 'hex'))));
  t.false(r.stdout.includes(oracle) || r.stdout.includes(Buffer.from(oracle, 'hex').toString('base64')));

  const got: RecoveredSecrets = await node.secrets;
  t.is(got.diskKey.toString('hex'), oracle);
  t.true(got.diskKey.equals(released.diskKey));
  t.true(got.diskKey.equals(deriveDiskKey(s.master, s.salt, DISK)));
  t.is(got.clusterId, released.clusterId);

  // Single use: the port is closed now.
  const again = await sextant(recoverArgs());
  t.is(again.exitCode, 1);
  t.is((JSON.parse(again.stdout) as { code: string }).code, 'KEYSERVICE_UNREACHABLE');
});

test.serial('abort: the endpoint stops and `secrets` rejects with RECOVERY_FAILED', async (t) => {
  const ac = new AbortController();
  const s = await startRecoveryServer({ tpm, diskUuid: DISK, host: '127.0.0.1', port: 0, signal: ac.signal });
  ac.abort();
  const e = await t.throwsAsync(s.secrets);
  t.true(isSextantError(e, 'RECOVERY_FAILED'));
  await t.throwsAsync(postJson({ url: `https://127.0.0.1:${s.port}`, fingerprint: s.fingerprint }, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'KEYSERVICE_UNREACHABLE' });
});

test.serial('a signal already aborted while listening: the endpoint stops at once', async (t) => {
  const ac = new AbortController();
  const starting = startRecoveryServer({ tpm, diskUuid: DISK, host: '127.0.0.1', port: 0, signal: ac.signal });
  ac.abort();
  const s = await starting;
  t.true(isSextantError(await t.throwsAsync(s.secrets), 'RECOVERY_FAILED'));
});

test.serial("PCR 15 = this cluster's lock recovers; any other PCR 15: CLUSTER_LOCK_MISMATCH, nothing released", async (t) => {
  // As agent/boot locks: TPM2_PCR_Event(15, the 32 cluster ID bytes).
  await tpm.pcrEvent(15, Buffer.from(ks.clusterId, 'hex'));
  const locked = await startRecoveryServer({ tpm, diskUuid: DISK, host: '127.0.0.1', port: 0 });
  try {
    const { run } = await adminRun(locked);
    t.like(await run, { clusterLock: 'locked-to-this-cluster', clusterId: ks.clusterId });
    t.is((await locked.secrets).clusterId, ks.clusterId);
  } finally {
    await locked.close();
  }
  await tpm.pcrEvent(15, Buffer.from(ks.clusterId, 'hex')); // now neither zero nor this cluster's lock
  const foreign = await startRecoveryServer({ tpm, diskUuid: DISK, host: '127.0.0.1', port: 0 });
  try {
    const { run, posted } = await adminRun(foreign);
    await t.throwsAsync(run, { code: 'CLUSTER_LOCK_MISMATCH' });
    t.false(posted.includes(RECOVERY_ROUTES.release));
  } finally {
    await foreign.close();
  }
});
