/**
 * attestation/tpm/verify.ts on recorded real swtpm evidence (test/fixtures/keyservice/evidence.json):
 * the stage chain per variant, what it returns, and which stage refuses what.
 */
import test from 'ava';
import { createECDH, X509Certificate } from 'node:crypto';
import { SextantError, type SextantErrorCode } from '../../../lib/errors.js';
import { StageError } from '../../../attestation/stage.js';
import { codecTpmChecks } from '../../../attestation/tpm/codec-checks.js';
import { VARIANT_STAGES, verifyIdentity, verifyProof, verifyQuoteEvidence, type ProofInput, type VerifiedIdentity } from '../../../attestation/tpm/verify.js';
import { VARIANTS } from '../../../attestation/variant.js';
import { replaySha256 } from '../../../keyservice/service.js';
import { qualifyingData } from '../../../protocol/seal.js';
import { loadEvidence, type RecordedEvidence } from '../../helpers/record-evidence.js';

const CREDENTIAL = Buffer.alloc(32, 7);

async function round1(): Promise<{ ev: RecordedEvidence; identity: VerifiedIdentity; facts: Record<string, unknown> }> {
  const ev = await loadEvidence();
  const facts: Record<string, unknown> = {};
  const identity = verifyIdentity({
    evidence: { ekCert: ev.ekCert, akPublic: ev.akPublic },
    ekRoots: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)],
    credential: CREDENTIAL,
    tpm: codecTpmChecks,
    now: new Date(),
    variant: 'qemu-vtpm',
    facts,
  });
  return { ev, identity, facts };
}

function proofInput(ev: RecordedEvidence, identity: VerifiedIdentity, over: Partial<ProofInput> = {}): ProofInput {
  return {
    identity,
    // The TPM would return CREDENTIAL from ActivateCredential; this is what it would send.
    evidence: { activatedCredential: CREDENTIAL.toString('base64'), quoteAttest: ev.quoteAttest, quoteSignature: ev.quoteSignature, pcrs: ev.pcrs, eventLog: ev.eventLog },
    qualifyingData: qualifyingData(Buffer.from(ev.nonce, 'base64'), Buffer.from(ev.ephemeralPublicKey, 'base64')),
    tpm: codecTpmChecks,
    variant: 'qemu-vtpm',
    replayEventLog: replaySha256,
    now: new Date(),
    ...over,
  };
}

function refusedAt(t: import('ava').ExecutionContext, f: () => unknown, stage: string, code: SextantErrorCode): void {
  const e = t.throws(f, { instanceOf: StageError }) as StageError;
  t.is(e.stage, stage);
  t.is(e.error.code, code);
}

test('every variant has a stage plan; the EK chain is its own named stage of each', (t) => {
  for (const v of VARIANTS) {
    // aws-sev-snp: AWS gives no EK certificate; the AK is trusted through report_data (bindAk).
    t.deepEqual(VARIANT_STAGES[v].identity, v === 'aws-sev-snp' ? ['parseEvidence', 'makeCredential'] : ['parseEvidence', 'verifyEkCert', 'makeCredential'], v);
    t.is(VARIANT_STAGES[v].proof[0], 'credentialProof', v);
    t.is(VARIANT_STAGES[v].proof.includes('bindAk'), v !== 'qemu-vtpm', v);
    t.deepEqual(VARIANT_STAGES[v].proof.slice(-4), ['verifyQuote', 'checkNonce', 'checkPcrDigest', 'replayEventLog'], v);
  }
});

test('recorded evidence passes the qemu-vtpm chain: an AttestedState with the quote, the replayed log and every stage', async (t) => {
  const { ev, identity, facts } = await round1();
  t.deepEqual(identity.stages, ['parseEvidence', 'verifyEkCert', 'makeCredential']);
  t.is(facts.akName, identity.ak.name.toString('hex'));
  t.is(identity.challenge.credentialBlob.length > 0 && identity.challenge.encryptedSecret.length > 0, true);
  const proofFacts: Record<string, unknown> = {};
  const state = verifyProof(proofInput(ev, identity, { facts: proofFacts, claims: { nodeName: 'worker-1' } }));
  t.deepEqual(state.stages, ['credentialProof', 'verifySnpEvidence', 'verifyQuote', 'checkNonce', 'checkPcrDigest', 'replayEventLog']);
  t.is(state.variant, 'qemu-vtpm');
  t.deepEqual(state.pcrs, ev.pcrs);
  t.true(state.quote.resetCount >= 0);
  t.deepEqual(state.eventLog !== 'absent' && state.eventLog.comparedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14]);
  t.is(proofFacts.nodeName, 'worker-1');
  t.deepEqual(Object.keys(proofFacts.evidence as object), ['pcrs', 'eventLog']);
});

test('each proof stage refuses with its own name and code', async (t) => {
  const { ev, identity } = await round1();
  const flipped = Buffer.from(ev.quoteSignature, 'base64');
  flipped[flipped.length - 1] ^= 1;
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { evidence: { ...proofInput(ev, identity).evidence, activatedCredential: Buffer.alloc(32).toString('base64') } })), 'credentialProof', 'AK_NOT_BOUND');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { evidence: { ...proofInput(ev, identity).evidence, snp: { report: 'AA==', vcek: 'AA==' } } })), 'verifySnpEvidence', 'VARIANT_EVIDENCE_UNEXPECTED');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { evidence: { ...proofInput(ev, identity).evidence, quoteSignature: flipped.toString('base64') } })), 'verifyQuote', 'QUOTE_SIGNATURE_INVALID');
  const otherKey = createECDH('prime256v1').generateKeys();
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { qualifyingData: qualifyingData(Buffer.from(ev.nonce, 'base64'), otherKey) })), 'verifyQuote', 'QUOTE_NONCE_MISMATCH');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { nonceRefusal: new SextantError({ code: 'NONCE_REPLAYED', message: 'used' }) })), 'checkNonce', 'NONCE_REPLAYED');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { evidence: { ...proofInput(ev, identity).evidence, pcrs: { ...ev.pcrs, '4': '00'.repeat(32) } } })), 'checkPcrDigest', 'PCR_DIGEST_MISMATCH');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { requireEventLog: true, evidence: { ...proofInput(ev, identity).evidence, eventLog: undefined } })), 'replayEventLog', 'EVENTLOG_REQUIRED');
});

test('the stage list is data: a plan without a stage skips it, and a stage missing its input says so', async (t) => {
  const { ev, identity } = await round1();
  const plan = { identity: VARIANT_STAGES['qemu-vtpm'].identity, proof: ['credentialProof', 'verifyQuote', 'checkNonce', 'checkPcrDigest'] as const };
  const state = verifyProof(proofInput(ev, identity, { plan }));
  t.deepEqual(state.stages, [...plan.proof]);
  t.is(state.eventLog, 'absent');
  refusedAt(t, () => verifyProof(proofInput(ev, identity, { plan: { identity: [], proof: ['checkPcrDigest'] } })), 'checkPcrDigest', 'INTERNAL');
  const ekRoots = [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)];
  refusedAt(t, () => verifyIdentity({ evidence: ev, ekRoots, credential: CREDENTIAL, tpm: codecTpmChecks, now: new Date(), variant: 'qemu-vtpm', plan: { identity: ['makeCredential'], proof: [] } }), 'makeCredential', 'INTERNAL');
  refusedAt(t, () => verifyIdentity({ evidence: ev, ekRoots: [], credential: CREDENTIAL, tpm: codecTpmChecks, now: new Date(), variant: 'qemu-vtpm' }), 'verifyEkCert', 'EK_CERT_UNTRUSTED');
});

test('the confirm round\'s part of the chain: the same quote stages for an AK bound earlier', async (t) => {
  const { ev, identity } = await round1();
  const input = proofInput(ev, identity);
  const facts: Record<string, unknown> = {};
  const quote = verifyQuoteEvidence({ ak: identity.ak, evidence: input.evidence, qualifyingData: input.qualifyingData, tpm: codecTpmChecks, facts });
  t.deepEqual(quote.selection, [{ alg: 'sha256', pcrs: [...Array(16).keys()] }]);
  t.deepEqual(Object.keys(facts.evidence as object), ['pcrs']);
  refusedAt(t, () => verifyQuoteEvidence({ ak: identity.ak, evidence: { ...input.evidence, pcrs: { ...ev.pcrs, '9': '00'.repeat(32) } }, qualifyingData: input.qualifyingData, tpm: codecTpmChecks }), 'checkPcrDigest', 'PCR_DIGEST_MISMATCH');
  refusedAt(t, () => verifyQuoteEvidence({ ak: identity.ak, evidence: input.evidence, qualifyingData: Buffer.alloc(32), tpm: codecTpmChecks }), 'verifyQuote', 'QUOTE_NONCE_MISMATCH');
});
