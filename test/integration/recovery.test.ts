/**
 * Recovery end to end: the node's recovery endpoint on a real swtpm through the koffi -> ESYS
 * engine, real HTTPS on 127.0.0.1, the admin as the real `sextant recover` process (and as
 * the library, to compose attacks), the node's state disk a real LUKS2 image the key must
 * open (cryptsetup). The node must get exactly the disk key the key service releases to it;
 * every refusal happens before anything secret is sent; only a pinned TLS client gets any TPM
 * work done, and only a key that opens the disk is accepted.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import { attest } from '../../agent/attest/client.js';
import { postJson } from '../../agent/attest/transport.js';
import { startRecoveryServer, type RecoveredSecrets, type RecoveryServer } from '../../agent/recovery/server.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { resolveConfig } from '../../keyservice/config.js';
import { deriveDiskKey } from '../../keyservice/derive.js';
import { loadReferenceSet } from '../../attestation/policy/load-reference.js';
import { recoverNode } from '../../keyservice/recover.js';
import { loadCaCertificates } from '../../attestation/tpm/ek-chain.js';
import { RECOVERY_ROUTES, type RecoveryReleaseRequest } from '../../protocol/recovery-messages.js';
import { generateEphemeralKey, qualifyingData, seal } from '../../protocol/seal.js';
import { hash, toHex } from '../../lib/bytes.js';
import { isSextantError } from '../../lib/errors.js';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { run } from '../../lib/exec.js';
import { keyOpensDisk } from '../../agent/disk/header-copy.js';
import { prepareStateDisk } from '../../agent/disk/prepare.js';
import { generateTlsIdentity } from '../../agent/recovery/self-signed-cert.js';
import { sha256File, sparseImage } from '../agent/disk/images.js';

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
/** The node's state disk, formatted with the key the key service derives for DISK. */
let disk: string;
/** The key service's TLS identity from its state dir: what `sextant recover` presents by default. */
let ksIdentity: { keyPem: string; certPem: string };
/** An admin key pinned by its SPKI hash (computed by openssl), with its own certificate. */
let admin: { keyPem: string; certPem: string; keyFile: string; certFile: string; pin: string };
/** Every TPM call the endpoints make, by name. */
const tpmCalls: string[] = [];
let proofs = 0;

/** The real TPM, counted. */
function counted(inner: AttestationTpm): AttestationTpm {
  const c = <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) => (...a: A) => {
    tpmCalls.push(name);
    return f(...a);
  };
  return {
    ekCertificate: c('ekCertificate', () => inner.ekCertificate()),
    akPublic: c('akPublic', () => inner.akPublic()),
    activateCredential: c('activateCredential', (b: Uint8Array, s: Uint8Array) => inner.activateCredential(b, s)),
    quote: c('quote', (d: Uint8Array) => inner.quote(d)),
    dispose: async () => undefined,
  };
}

/** A recovery endpoint that trusts the key service's certificate and the admin key, and proves keys on `disk`. */
function startNode(o: Partial<Parameters<typeof startRecoveryServer>[0]> = {}): Promise<RecoveryServer> {
  return startRecoveryServer({
    tpm: counted(tpm),
    diskUuid: DISK,
    host: '127.0.0.1',
    port: 0,
    trust: { certificates: [ks.fingerprint], publicKeys: [admin.pin] },
    proveKey: async (k) => {
      proofs++;
      return keyOpensDisk({ runner: run }, disk, 48 * 1024 * 1024, k);
    },
    ...o,
  });
}

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
  const state = path.join(dir, 'state');
  ksIdentity = { keyPem: await readFile(path.join(state, 'tls-key.pem'), 'utf8'), certPem: await readFile(path.join(state, 'tls-cert.pem'), 'utf8') };
  const s = await readStateSecrets(state);
  disk = await sparseImage(path.join(dir, 'state.img'));
  await prepareStateDisk({ device: disk, key: deriveDiskKey(s.master, s.salt, DISK), open: false });
  const keyFile = path.join(dir, 'admin.key');
  const certFile = path.join(dir, 'admin.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', '/CN=admin', '-days', '1']);
  // The pin as an operator computes it: SHA-256 of the DER SubjectPublicKeyInfo.
  const spki = (await run('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER'])).stdoutBytes;
  const pin = 'sha256:' + (await run('openssl', ['dgst', '-sha256', '-r'], { input: spki })).stdout.split(' ')[0];
  admin = { keyPem: await readFile(keyFile, 'utf8'), certPem: await readFile(certFile, 'utf8'), keyFile, certFile, pin };
  // One endpoint serves the serial tests below: a bucket large enough for all of them (the limits test has its own).
  node = await startNode({ nodeName: 'worker-7', log: (l) => nodeLog.push(l), rateLimit: { burst: 100, perSecond: 10 } });
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

/** The admin library against a node, recording which routes were posted (default: the key service's identity and secrets). */
async function adminRun(
  target: RecoveryServer,
  o: { tamperRelease?: (r: RecoveryReleaseRequest) => RecoveryReleaseRequest; client?: { keyPem: string; certPem: string } | null; secrets?: { master: Buffer; salt: Buffer } } = {},
) {
  const posted: string[] = [];
  const s = o.secrets ?? (await readStateSecrets(path.join(dir, 'state')));
  const ep = { url: `https://127.0.0.1:${target.port}`, fingerprint: target.fingerprint, peer: 'node', client: o.client === null ? undefined : (o.client ?? ksIdentity) };
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
  return startNode({ tpm: evil });
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
  const limited = await startNode({ maxRequestBytes: 1024, rateLimit: { burst: 2, perSecond: 0.001 } });
  try {
    const ep = { url: `https://127.0.0.1:${limited.port}`, fingerprint: limited.fingerprint, client: ksIdentity };
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1, nonce: 'A'.repeat(4000) }), { code: 'REQUEST_TOO_LARGE' });
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'PROTOCOL_INVALID' });
    await t.throwsAsync(postJson(ep, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'RATE_LIMITED' });
  } finally {
    await limited.close();
  }
});

test.serial('the first-come attack: a party without a pinned TLS identity runs the whole admin flow and is refused RECOVERY_UNAUTHORIZED before any TPM work; the endpoint stays up', async (t) => {
  const attacker = { master: randomBytes(32), salt: randomBytes(32) };
  const selfMade = generateTlsIdentity('attacker');
  for (const client of [null, { keyPem: selfMade.keyPem, certPem: selfMade.certPem }]) {
    const tpmBefore = tpmCalls.length;
    const { run: attempt, posted } = await adminRun(node, { client, secrets: attacker });
    await t.throwsAsync(attempt, { code: 'RECOVERY_UNAUTHORIZED' });
    t.deepEqual(posted, [RECOVERY_ROUTES.evidence], 'refused at the first request');
    t.deepEqual(tpmCalls.slice(tpmBefore), [], 'no TPM work for an unauthenticated client');
  }
  t.true(await pending(node.secrets));
  t.true(nodeLog.some((l) => /refused .*RECOVERY_UNAUTHORIZED/.test(l)));
});

test.serial('a pinned identity with a wrong key (another master secret): the node proves the key on its disk, refuses DISK_WRONG_KEY, keeps nothing and stays up', async (t) => {
  const before = await sha256File(disk);
  const proofsBefore = proofs;
  const { run: attempt, posted } = await adminRun(node, { client: admin, secrets: { master: randomBytes(32), salt: randomBytes(32) } });
  // The forged master secret derives another cluster ID too; the node never sees past the key proof.
  await t.throwsAsync(attempt, { code: 'DISK_WRONG_KEY' });
  t.deepEqual(posted, [RECOVERY_ROUTES.evidence, RECOVERY_ROUTES.quote, RECOVERY_ROUTES.release]);
  t.is(proofs, proofsBefore + 1);
  t.true(await pending(node.secrets), 'the forged answer did not resolve the node\'s secrets');
  t.is(await sha256File(disk), before, 'the key proof is read-only');
  // Still serving: an authenticated evidence round is answered.
  const ev = (await postJson({ url: `https://127.0.0.1:${node.port}`, fingerprint: node.fingerprint, client: admin }, RECOVERY_ROUTES.evidence, { v: 1, nonce: randomBytes(32).toString('base64') })) as { session: string };
  t.regex(ev.session, /^[0-9a-f]{32}$/);
});

test.serial('a session belongs to the identity that opened it: another pinned identity cannot continue it (SESSION_UNKNOWN, no TPM work)', async (t) => {
  // Its own endpoint: a fresh per-address token bucket, whatever the tests above spent.
  const own = await startNode();
  t.teardown(() => own.close());
  const owner = { url: `https://127.0.0.1:${own.port}`, fingerprint: own.fingerprint, client: ksIdentity };
  const ev = (await postJson(owner, RECOVERY_ROUTES.evidence, { v: 1, nonce: randomBytes(32).toString('base64') })) as { session: string };
  const tpmBefore = tpmCalls.length;
  const challenge = { v: 1, sessionId: randomBytes(16).toString('hex'), credentialBlob: randomBytes(64).toString('base64'), encryptedSecret: randomBytes(64).toString('base64'), ttlSeconds: 60 };
  await t.throwsAsync(postJson({ ...owner, client: admin }, RECOVERY_ROUTES.quote, { v: 1, session: ev.session, challenge }), { code: 'SESSION_UNKNOWN' });
  t.deepEqual(tpmCalls.slice(tpmBefore), []);
  // The owner's session survived the foreign attempt: its (bogus) credential reaches the TPM.
  await t.throwsAsync(postJson(owner, RECOVERY_ROUTES.quote, { v: 1, session: ev.session, challenge }), { code: 'CREDENTIAL_ACTIVATION_FAILED' });
  t.deepEqual(tpmCalls.slice(tpmBefore), ['activateCredential']);
});

test.serial('an admin key pinned by its SPKI hash recovers with the real `sextant recover --identity-key/--identity-cert`', async (t) => {
  const other = await startNode();
  try {
    const r = await sextant([...recoverArgs({ url: `https://127.0.0.1:${other.port}`, fingerprint: other.fingerprint }), '--identity-key', admin.keyFile, '--identity-cert', admin.certFile]);
    t.is(r.exitCode, 0, r.stderr);
    t.like(JSON.parse(r.stdout), { ok: true, diskUuid: DISK });
    const got = await other.secrets;
    const s = await readStateSecrets(path.join(dir, 'state'));
    t.true(got.diskKey.equals(deriveDiskKey(s.master, s.salt, DISK)));
    // A key and certificate that do not belong together: refused locally, the node never contacted.
    const mismatched = await sextant([...recoverArgs(), '--identity-key', admin.keyFile, '--identity-cert', path.join(dir, 'state', 'tls-cert.pem')]);
    t.is(mismatched.exitCode, 2);
    t.like(JSON.parse(mismatched.stdout), { ok: false, code: 'KEY_INVALID' });
  } finally {
    await other.close();
  }
});

test.serial('success (after the forged attempts above, on the same endpoint): the node gets the disk key the key service releases to it (= HKDF by openssl), then the endpoint closes', async (t) => {
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
  const s = await startNode({ signal: ac.signal });
  ac.abort();
  const e = await t.throwsAsync(s.secrets);
  t.true(isSextantError(e, 'RECOVERY_FAILED'));
  await t.throwsAsync(postJson({ url: `https://127.0.0.1:${s.port}`, fingerprint: s.fingerprint, client: ksIdentity }, RECOVERY_ROUTES.evidence, { v: 1 }), { code: 'KEYSERVICE_UNREACHABLE' });
});

test.serial('a signal already aborted while listening: the endpoint stops at once', async (t) => {
  const ac = new AbortController();
  const starting = startNode({ signal: ac.signal });
  ac.abort();
  const s = await starting;
  t.true(isSextantError(await t.throwsAsync(s.secrets), 'RECOVERY_FAILED'));
});

test.serial("PCR 15 = this cluster's lock recovers; any other PCR 15: CLUSTER_LOCK_MISMATCH, nothing released", async (t) => {
  // As agent/boot locks: TPM2_PCR_Event(15, the 32 cluster ID bytes).
  await tpm.pcrEvent(15, Buffer.from(ks.clusterId, 'hex'));
  const locked = await startNode();
  try {
    const { run } = await adminRun(locked);
    t.like(await run, { clusterLock: 'locked-to-this-cluster', clusterId: ks.clusterId });
    t.is((await locked.secrets).clusterId, ks.clusterId);
  } finally {
    await locked.close();
  }
  await tpm.pcrEvent(15, Buffer.from(ks.clusterId, 'hex')); // now neither zero nor this cluster's lock
  const foreign = await startNode();
  try {
    const { run, posted } = await adminRun(foreign);
    await t.throwsAsync(run, { code: 'CLUSTER_LOCK_MISMATCH' });
    t.false(posted.includes(RECOVERY_ROUTES.release));
  } finally {
    await foreign.close();
  }
});
