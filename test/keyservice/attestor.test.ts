/**
 * The verifier's stages on recorded real swtpm evidence (test/fixtures/keyservice/evidence.json),
 * no TPM needed. The credential the service encrypts to the EK is captured from makeCredential
 * (only a TPM could decrypt it; the integration test does that part for real).
 */
import test from 'ava';
import { createECDH, createHash, X509Certificate } from 'node:crypto';
import type { NodeInventory } from '../../keyservice/policy/node-name.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KeyServiceAttestor } from '../../keyservice/attestor.js';
import { AuditLog, readAuditRecords, verifyAuditLog } from '../../keyservice/audit/log.js';
import { NonceStore } from '../../keyservice/nonce-store.js';
import { codecTpmChecks } from '../../attestation/tpm/codec-checks.js';
import type { TpmChecks } from '../../attestation/tpm/checks.js';
import { replaySha256 } from '../../keyservice/service.js';
import { deriveDiskKey } from '../../keyservice/derive.js';
import type { ReferenceSet } from '../../attestation/policy/reference.js';
import type { CompleteRequest } from '../../protocol/messages.js';
import { open, sealContext } from '../../protocol/seal.js';
import { loadEvidence, type RecordedEvidence } from '../helpers/record-evidence.js';

const master = Buffer.alloc(32, 1);
const salt = Buffer.alloc(32, 2);
const DISK = '11111111-2222-4333-8444-555555555555';

async function world(o: { requireEventLog?: boolean; references?: (ev: RecordedEvidence) => ReferenceSet[]; issueRecordedNonce?: boolean; withNonce?: boolean; nodeInventory?: (ekSha256: string) => NodeInventory } = {}) {
  const ev = await loadEvidence();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-att-'));
  const audit = await AuditLog.open(path.join(dir, 'audit.log'));
  let credential: Buffer | undefined;
  const tpm: TpmChecks = {
    ...codecTpmChecks,
    makeCredential: (ek, name, secret) => {
      credential = Buffer.from(secret);
      return codecTpmChecks.makeCredential(ek, name, secret);
    },
  };
  const nonces = new NonceStore({ random: () => Buffer.from(ev.nonce, 'base64') });
  if (o.issueRecordedNonce !== false) nonces.issue();
  const refs = o.references?.(ev) ?? [{ label: 'recorded', pcrs: { '4': { expected: ev.pcrs['4'], enforced: true }, '9': { expected: ev.pcrs['9'], enforced: true } } }];
  const attestor = new KeyServiceAttestor({
    ekCas: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)],
    tpm,
    nonces,
    references: () => refs,
    masterSecret: master,
    salt,
    audit,
    replayEventLog: replaySha256,
    requireEventLog: o.requireEventLog,
    nodeInventory: o.nodeInventory?.(createHash('sha256').update(Buffer.from(ev.ekCert, 'base64')).digest('hex')),
  });
  const round1 = await attestor.challenge({ v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic, ...(o.withNonce && { withNonce: true as const }) }, 'test');
  const req: CompleteRequest = {
    v: 1,
    sessionId: round1.sessionId,
    activatedCredential: credential!.toString('base64'),
    nonce: ev.nonce,
    ephemeralPublicKey: ev.ephemeralPublicKey,
    quoteAttest: ev.quoteAttest,
    quoteSignature: ev.quoteSignature,
    pcrs: ev.pcrs,
    eventLog: ev.eventLog,
    diskUuid: DISK,
    role: 'join',
    nodeName: 'worker-1',
  };
  return { ev, attestor, req, round1, nonces, lastCredential: () => credential!.toString('base64'), audit, dir, cleanup: async () => { await audit.close(); await rm(dir, { recursive: true }); } };
}

test('recorded evidence passes every stage; the sealed answer opens to HKDF(master, salt, "key-"+uuid)', async (t) => {
  const w = await world();
  const r = await w.attestor.complete(w.req, 'test');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(w.ev.ephemeralPrivateKey, 'base64'));
  const secrets = JSON.parse(open(r.sealed, { ecdh, publicKey: ecdh.getPublicKey() }, sealContext(w.req.sessionId, Buffer.from(w.ev.nonce, 'base64'), ecdh.getPublicKey())).toString()) as { diskKey: string };
  t.deepEqual(Buffer.from(secrets.diskKey, 'base64'), deriveDiskKey(master, salt, DISK));
  await w.audit.close();
  // challenge, then the release preceded by its two evidence blobs (the PCRs, the event log).
  t.like(await verifyAuditLog(path.join(w.dir, 'audit.log')), { count: 4, evidenceBlobs: 2 });
  // The release record keeps what was verified: the quoted PCRs and the evidence log itself.
  const release = (await readAuditRecords(path.join(w.dir, 'audit.log'))).at(-1)!;
  t.is(release.decision, 'release');
  t.deepEqual(release.pcrs, w.req.pcrs);
  t.is(release.eventLog, w.req.eventLog!);
  t.deepEqual(release.eventLogPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14]);
  await rm(w.dir, { recursive: true });
});

test('round 1 with withNonce answers the round-2 nonce (no /v1/nonce request): it is issued, single use, and the answer still passes the old closed schema without it', async (t) => {
  const w = await world({ issueRecordedNonce: false, withNonce: true });
  t.is(w.round1.nonce, w.ev.nonce);
  t.is(w.round1.nonceTtlSeconds, 60);
  await w.attestor.complete(w.req, 'test');
  const again = await world({ issueRecordedNonce: false });
  t.is(again.round1.nonce, undefined, 'no nonce unless asked: older agents get the answer they know');
  await w.cleanup();
  await again.cleanup();
});

test('a nonce that came with a challenge is single use like any other', async (t) => {
  const w = await world({ issueRecordedNonce: false, withNonce: true });
  await w.attestor.complete(w.req, 'test');
  const r1 = await w.attestor.challenge({ v: 1, ekCert: w.ev.ekCert, akPublic: w.ev.akPublic }, 'test');
  await t.throwsAsync(w.attestor.complete({ ...w.req, sessionId: r1.sessionId, activatedCredential: w.lastCredential() }, 'test'), { code: 'NONCE_REPLAYED' });
  await w.cleanup();
});

const attacks: [string, string, (req: CompleteRequest, ev: RecordedEvidence) => CompleteRequest, Parameters<typeof world>[0]?][] = [
  ['wrong activated credential', 'AK_NOT_BOUND', (r) => ({ ...r, activatedCredential: Buffer.alloc(32).toString('base64') })],
  ['unknown session', 'SESSION_UNKNOWN', (r) => ({ ...r, sessionId: '0'.repeat(32) })],
  ['one signature bit flipped', 'QUOTE_SIGNATURE_INVALID', (r) => {
    const s = Buffer.from(r.quoteSignature, 'base64');
    s[s.length - 1] ^= 1;
    return { ...r, quoteSignature: s.toString('base64') };
  }],
  ['another ephemeral key than the quote binds', 'QUOTE_NONCE_MISMATCH', (r) => ({ ...r, ephemeralPublicKey: createECDH('prime256v1').generateKeys().toString('base64') })],
  ['a nonce the service never issued', 'NONCE_UNKNOWN', (r) => r, { issueRecordedNonce: false }],
  ['a PCR value that is not the quoted one', 'PCR_DIGEST_MISMATCH', (r) => ({ ...r, pcrs: { ...r.pcrs, '4': '00'.repeat(32) } })],
  ['event log missing where required', 'EVENTLOG_REQUIRED', (r) => ({ ...r, eventLog: undefined }), { requireEventLog: true }],
  ['event log of another boot', 'EVENTLOG_REPLAY_MISMATCH', (r) => ({ ...r, eventLog: Buffer.from(r.eventLog!, 'base64').subarray(0, -40).toString('base64') })],
  ['enforced PCR differs from the measurements', 'MEASUREMENTS_MISMATCH', (r) => r, { references: () => [{ label: 'other', pcrs: { '9': { expected: 'ab'.repeat(32), enforced: true } } }] }],
  ['a node name the inventory gives to another TPM', 'NODE_NAME_MISMATCH', (r) => r, { nodeInventory: (ek) => new Map([[ek, 'worker-9']]) }],
  ['an EK the node inventory does not list', 'NODE_UNKNOWN', (r) => r, { nodeInventory: () => new Map([['ab'.repeat(32), 'worker-1']]) }],
];

for (const [name, code, mutate, opts] of attacks) {
  test(`refused: ${name} -> ${code}, audited with its stage`, async (t) => {
    const w = await world(opts);
    await t.throwsAsync(w.attestor.complete(mutate(w.req, w.ev), 'test'), { code: code as never });
    await w.audit.close();
    const text = await (await import('node:fs/promises')).readFile(path.join(w.dir, 'audit.log'), 'utf8');
    t.regex(text.trim().split('\n').pop()!, new RegExp(`"decision":"refuse","stage":"\\w+","code":"${code}"`));
    await rm(w.dir, { recursive: true });
  });
}

test('a rejoin with PCR 15 zero (a rebooted node) is released and audited as unlocked', async (t) => {
  const w = await world();
  t.is(w.ev.pcrs['15'], '00'.repeat(32));
  await w.attestor.complete({ ...w.req, role: 'rejoin' }, 'test');
  await w.audit.close();
  const text = await (await import('node:fs/promises')).readFile(path.join(w.dir, 'audit.log'), 'utf8');
  t.like(JSON.parse(text.trim().split('\n').pop()!), { decision: 'release', role: 'rejoin', clusterLock: 'unlocked' });
  await rm(w.dir, { recursive: true });
});

test('with a node inventory, the TPM whose EK certificate is listed gets its own node name', async (t) => {
  const w = await world({ nodeInventory: (ek) => new Map([[ek, 'worker-1']]) });
  await t.notThrowsAsync(w.attestor.complete(w.req, 'test'));
  await w.cleanup();
});

test('a session is single use and the nonce is consumed: a second round 2 is SESSION_UNKNOWN', async (t) => {
  const w = await world();
  await w.attestor.complete(w.req, 'test');
  await t.throwsAsync(w.attestor.complete(w.req, 'test'), { code: 'SESSION_UNKNOWN' });
  await w.cleanup();
});

test('an AK that is not a restricted signing key is refused in round 1 (AK_ATTRIBUTES_INVALID)', async (t) => {
  const w = await world();
  const ak = Buffer.from(w.ev.akPublic, 'base64');
  // TPMT_PUBLIC: type(2) nameAlg(2) objectAttributes(4): clear `restricted` (bit 16).
  ak.writeUInt32BE(ak.readUInt32BE(4) & ~0x10000, 4);
  await t.throwsAsync(w.attestor.challenge({ v: 1, ekCert: w.ev.ekCert, akPublic: ak.toString('base64') }, 'test'), { code: 'AK_ATTRIBUTES_INVALID' });
  await t.throwsAsync(w.attestor.challenge({ v: 1, ekCert: w.ev.ekCert, akPublic: Buffer.from('garbage').toString('base64') }, 'test'), { code: 'PROTOCOL_INVALID' });
  await w.cleanup();
});
