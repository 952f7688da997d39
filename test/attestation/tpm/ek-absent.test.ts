/**
 * Round 1 for a TPM without an EK certificate (many firmware TPMs; AWS vTPMs): the node sends
 * its EK public area. Trusted only by enrolment (qemu-vtpm, tpm) or not needed (aws-sev-snp,
 * whose AK is bound through the SNP report instead); the EK it names still receives the
 * credential. Recorded swtpm evidence: the EK public area is the certificate's key in template L-1.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { codecTpmChecks } from '../../../attestation/tpm/codec-checks.js';
import { ekSpkiSha256 } from '../../../attestation/tpm/ek-key.js';
import { verifyIdentity } from '../../../attestation/tpm/verify.js';
import { StageError } from '../../../attestation/stage.js';
import { marshal } from '../../../tpm/codec.js';
import { ekTemplateRsa2048 } from '../../../tpm/ek/templates.js';
import { tpmtWithPublicKey } from '../../../tpm/public-key.js';
import { TPMT_PUBLIC } from '../../../tpm/structures.js';
import { assertChallengeRequest } from '../../../protocol/validate.js';
import { loadEvidence } from '../../helpers/record-evidence.js';

async function world() {
  const ev = await loadEvidence();
  const cert = new X509Certificate(Buffer.from(ev.ekCert, 'base64'));
  const ekPublic = Buffer.from(marshal(TPMT_PUBLIC, tpmtWithPublicKey(ekTemplateRsa2048(), cert.publicKey))).toString('base64');
  const base = { ekRoots: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)], credential: Buffer.alloc(32, 7), tpm: codecTpmChecks, now: new Date('2026-12-10T00:00:00Z') };
  return { ev, cert, ekPublic, base, sha: ekSpkiSha256(cert.publicKey) };
}

test('qemu-vtpm: an EK public area without certificate is EK_CERT_ABSENT naming the key, accepted once enrolled', async (t) => {
  const { ev, ekPublic, base, sha } = await world();
  const evidence = { ekPublic, akPublic: ev.akPublic };
  const e = t.throws(() => verifyIdentity({ ...base, evidence, variant: 'qemu-vtpm' }), { instanceOf: StageError });
  t.is(e.stage, 'verifyEkCert');
  t.is(e.error.code, 'EK_CERT_ABSENT');
  t.true(e.error.message.includes(sha));
  const facts: Record<string, unknown> = {};
  const v = verifyIdentity({ ...base, evidence, variant: 'qemu-vtpm', enrolledEks: new Set([sha]), facts });
  t.is(v.ekCert, undefined);
  t.is(ekSpkiSha256(v.ekKey), sha);
  t.like(facts, { ekEnrolled: true, ekPublicSha256: sha });
  t.true(v.challenge.credentialBlob.length > 0);
});

test('aws-sev-snp: no EK chain stage; the EK the node names (public area or an unverifiable certificate) gets the credential', async (t) => {
  const { ev, ekPublic, base, sha } = await world();
  const a = verifyIdentity({ ...base, ekRoots: [], evidence: { ekPublic, akPublic: ev.akPublic }, variant: 'aws-sev-snp' });
  t.deepEqual(a.stages, ['parseEvidence', 'makeCredential']);
  t.is(ekSpkiSha256(a.ekKey), sha);
  // A certificate no configured CA issued does not matter on aws-sev-snp: it is not trusted, only its key used.
  const b = verifyIdentity({ ...base, ekRoots: [], evidence: { ekCert: ev.ekCert, akPublic: ev.akPublic }, variant: 'aws-sev-snp' });
  t.is(ekSpkiSha256(b.ekKey), sha);
});

test('an EK public area that is not a TCG default-template EK is PROTOCOL_INVALID at parseEvidence; the request schema wants exactly one of ekCert and ekPublic', async (t) => {
  const { ev, cert, base } = await world();
  const notEk = { ...tpmtWithPublicKey(ekTemplateRsa2048(), cert.publicKey), objectAttributes: 0x00050072 };
  const e = t.throws(() => verifyIdentity({ ...base, evidence: { ekPublic: Buffer.from(marshal(TPMT_PUBLIC, notEk)).toString('base64'), akPublic: ev.akPublic }, variant: 'aws-sev-snp' }), { instanceOf: StageError });
  t.like(e, { stage: 'parseEvidence', error: { code: 'PROTOCOL_INVALID' } });
  t.throws(() => assertChallengeRequest({ v: 1, akPublic: ev.akPublic }), { code: 'PROTOCOL_INVALID', message: /exactly one of ekCert and ekPublic/ });
  t.throws(() => assertChallengeRequest({ v: 1, ekCert: ev.ekCert, ekPublic: ev.akPublic, akPublic: ev.akPublic }), { code: 'PROTOCOL_INVALID' });
  t.notThrows(() => assertChallengeRequest({ v: 1, ekPublic: ev.akPublic, akPublic: ev.akPublic }));
});
