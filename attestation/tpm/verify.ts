import type { KeyObject, X509Certificate } from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import { toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { pcrValuesEvidence, type EventLogEvidence, type SnpEvidenceMessage, type TpmIdentityEvidence, type TpmQuoteEvidence } from '../evidence.js';
import { bindAkToSnp, snpAuditFacts, verifyVariantEvidence, type VerifiedSnpEvidence } from '../snp/bind-ak.js';
import type { SnpAttestedState } from '../snp/verify.js';
import { asInputError, stage } from '../stage.js';
import type { SnpVariantSetup, Variant } from '../variant.js';
import type { AkIdentity, QuotedFacts, TpmChecks } from './checks.js';
import { ekFacts, parseEkCert, verifyEkCert, type EkChainCache } from './ek-chain.js';
import { ekSpkiSha256, parseEkPublic } from './ek-key.js';
import { checkEventLog, type EventLogReplayer } from './event-log.js';
import { checkPcrDigest } from './pcr-digest.js';

/**
 * The TPM verifier as a chain of named stages over the two rounds of the protocol (the server
 * side of attestation/tpm/produce.ts). Each stage is one pure function of explicit inputs; the
 * first failure throws a StageError with the stage's name and its own code; success returns a
 * typed state, not a boolean. Which stages run is data, per variant (VARIANT_STAGES).
 *
 *   identity  parseEvidence -> verifyEkCert -> makeCredential          (round 1: the challenge)
 *   proof     credentialProof -> verifySnpEvidence -> [bindAk] -> verifyQuote -> checkNonce
 *             -> checkPcrDigest -> replayEventLog                      (round 2: AttestedState)
 *
 * Policy on the attested state (measurements, cluster lock, node name, disk binding) is the
 * caller's: keyservice/attestor.ts. `facts` collects what the audit record keeps, stage by
 * stage, so a refusal is audited with what was learnt up to it.
 */

export const IDENTITY_STAGES = ['parseEvidence', 'verifyEkCert', 'makeCredential'] as const;
export type IdentityStage = (typeof IDENTITY_STAGES)[number];
export const PROOF_STAGES = ['credentialProof', 'verifySnpEvidence', 'bindAk', 'verifyQuote', 'checkNonce', 'checkPcrDigest', 'replayEventLog'] as const;
export type ProofStage = (typeof PROOF_STAGES)[number];

export interface StagePlan {
  identity: readonly IdentityStage[];
  proof: readonly ProofStage[];
}

const EK_IDENTITY: readonly IdentityStage[] = ['parseEvidence', 'verifyEkCert', 'makeCredential'];
const QUOTE_PROOF: readonly ProofStage[] = ['verifyQuote', 'checkNonce', 'checkPcrDigest', 'replayEventLog'];
const SNP_PLAN: StagePlan = { identity: EK_IDENTITY, proof: ['credentialProof', 'verifySnpEvidence', 'bindAk', ...QUOTE_PROOF] };
/**
 * AWS gives an SNP guest's vTPM no EK certificate: the AK is trusted through the report's
 * report_data (bindAk), so no EK chain is checked. The credential is still made to the EK the
 * node names (certificate or public area) and activated: it proves the AK and that EK share a TPM.
 */
const AWS_PLAN: StagePlan = { identity: ['parseEvidence', 'makeCredential'], proof: SNP_PLAN.proof };

/**
 * The stages each variant runs. qemu-vtpm's verifySnpEvidence only refuses SNP evidence it was
 * sent (VARIANT_EVIDENCE_UNEXPECTED); the SNP variants verify the report, then bind the AK to it.
 */
export const VARIANT_STAGES: Readonly<Record<Variant, StagePlan>> = {
  'qemu-vtpm': { identity: EK_IDENTITY, proof: ['credentialProof', 'verifySnpEvidence', ...QUOTE_PROOF] },
  'azure-sev-snp': SNP_PLAN,
  'aws-sev-snp': AWS_PLAN,
  'gcp-sev-snp': SNP_PLAN,
};

/** What the audit record keeps (plain data; evidence bytes go under `evidence`). */
export type AuditFacts = Record<string, unknown>;

// ---- round 1 ----

export interface IdentityInput {
  evidence: TpmIdentityEvidence;
  /** verifyEkCert's trust: the EK CAs (TPM vendor roots or intermediates) the EK certificate must chain to. */
  ekRoots: readonly X509Certificate[];
  /**
   * verifyEkCert's other trust, for TPMs without an EK certificate: SHA-256 of the DER
   * SubjectPublicKeyInfo of EK public keys an operator enrolled (node inventory keys).
   */
  enrolledEks?: ReadonlySet<string>;
  /** Remembers verified chains for these roots (EkChainCache); absent: every chain is verified anew. */
  ekCache?: EkChainCache;
  /** The fresh secret makeCredential encrypts to the EK for the AK's Name (32 random bytes). */
  credential: Uint8Array;
  tpm: TpmChecks;
  now: Date;
  variant: Variant;
  /** The stages to run (default: the variant's, VARIANT_STAGES). */
  plan?: StagePlan;
  facts?: AuditFacts;
}

/** What round 1 proved and what round 2 needs: the AK, the EK, the challenge. */
export interface VerifiedIdentity {
  ak: AkIdentity;
  /** The AK's TPMT_PUBLIC exactly as sent (what an SNP report binds). */
  akPublic: Buffer;
  /** The EK certificate, when the node has one (verified when the plan has verifyEkCert). */
  ekCert?: X509Certificate;
  /** The EK's public key: the credential's target, and the node's identity for bindings. */
  ekKey: KeyObject;
  credential: Buffer;
  challenge: { credentialBlob: Buffer; encryptedSecret: Buffer };
  stages: IdentityStage[];
}

interface IdentityContext {
  readonly in: IdentityInput;
  readonly facts: AuditFacts;
  akPublic: Buffer;
  ak?: AkIdentity;
  /** The EK certificate as sent, parsed once (parseEvidence) and not trusted until verifyEkCert. */
  sentEkCert?: X509Certificate;
  ekCert?: X509Certificate;
  ekKey?: KeyObject;
  challenge?: VerifiedIdentity['challenge'];
}

function needs<T>(v: T | undefined, what: string, stageName: string): T {
  if (v === undefined) throw new SextantError({ code: 'INTERNAL', message: `stage ${stageName} needs ${what}: the stage plan leaves out the stage that provides it` });
  return v;
}

const IDENTITY: Record<IdentityStage, (c: IdentityContext) => void> = {
  parseEvidence(c) {
    try {
      c.ak = c.in.tpm.parseAk(c.akPublic);
    } catch (e) {
      asInputError('PROTOCOL_INVALID', 'AK public area')(e);
    }
    c.facts.akName = toHex(c.ak!.name);
    // The EK as the node names it, not yet trusted: its certificate's key, or its public area.
    const { ekCert, ekPublic } = c.in.evidence;
    if (ekCert !== undefined) c.sentEkCert = parseEkCert(Buffer.from(ekCert, 'base64'));
    c.ekKey = c.sentEkCert ? c.sentEkCert.publicKey : parseEkPublic(Buffer.from(ekPublic ?? '', 'base64'));
    c.facts.ekPublicSha256 = ekSpkiSha256(c.ekKey);
  },
  verifyEkCert(c) {
    const { ekCert, ekChain } = c.in.evidence;
    if (ekCert === undefined) {
      // No certificate (many firmware TPMs): trusted only if an operator enrolled this EK.
      const sha = ekSpkiSha256(needs(c.ekKey, 'the EK', 'verifyEkCert'));
      if (!c.in.enrolledEks?.has(sha)) {
        throw new SextantError({
          code: 'EK_CERT_ABSENT',
          message: `the node sent no EK certificate (its TPM has none in NV) and its EK public key (sha256 ${sha} of the DER SubjectPublicKeyInfo) is not enrolled: add "${sha}": "<node name>" to the node inventory (docs/tpm.md, "A TPM without an EK certificate")`,
        });
      }
      c.facts.ekEnrolled = true;
      return;
    }
    const sent = needs(c.sentEkCert, 'the parsed EK certificate', 'verifyEkCert');
    const chain = (ekChain ?? []).map((d) => Buffer.from(d, 'base64'));
    const ek = c.in.ekCache ? c.in.ekCache.verify(sent, c.in.now, chain) : verifyEkCert(sent, c.in.ekRoots, c.in.now, chain);
    c.ekCert = ek.cert;
    c.ekKey = ek.cert.publicKey;
    // The TPM the certificate names and the CA it chained to: in the round-1 audit record.
    Object.assign(c.facts, ekFacts(ek));
  },
  makeCredential(c) {
    const ekKey = needs(c.ekKey, 'the EK', 'makeCredential');
    c.challenge = c.in.tpm.makeCredential(ekKey, needs(c.ak, 'the AK', 'makeCredential').name, c.in.credential);
  },
};

/** Round 1: the TPM's identity, up to the credential challenge only the EK's TPM can answer. */
export function verifyIdentity(input: IdentityInput): VerifiedIdentity {
  const facts = input.facts ?? {};
  if (input.evidence.ekCert !== undefined) facts.ekCertSha256 = createHash('sha256').update(Buffer.from(input.evidence.ekCert, 'base64')).digest('hex');
  const c: IdentityContext = { in: input, facts, akPublic: Buffer.from(input.evidence.akPublic, 'base64') };
  const stages: IdentityStage[] = [];
  for (const name of (input.plan ?? VARIANT_STAGES[input.variant]).identity) {
    stage(name, () => IDENTITY[name](c));
    stages.push(name);
  }
  return {
    ak: needs(c.ak, 'the AK', 'verifyIdentity'),
    akPublic: c.akPublic,
    ekCert: c.ekCert,
    ekKey: needs(c.ekKey, 'the EK', 'verifyIdentity'),
    credential: Buffer.from(input.credential),
    challenge: needs(c.challenge, 'the credential challenge', 'verifyIdentity'),
    stages,
  };
}

// ---- round 2 ----

/** Round 2's evidence: the activated credential, the quote and its PCRs, the event log, the CPU's report. */
export type ProofEvidence = TpmQuoteEvidence & EventLogEvidence & { activatedCredential: string; snp?: SnpEvidenceMessage };

export interface ProofInput {
  /** Round 1's result, as the caller kept it between the rounds. */
  identity: Pick<VerifiedIdentity, 'ak' | 'akPublic' | 'ekCert' | 'credential'>;
  evidence: ProofEvidence;
  /** What the quote must be over (protocol/seal.ts qualifyingData: nonce and the node's one-time key). */
  qualifyingData: Uint8Array;
  /** checkNonce: the nonce store's verdict on the nonce (consumed before any stage, whatever the outcome). */
  nonceRefusal?: Error;
  tpm: TpmChecks;
  variant: Variant;
  /** The SNP variants' trust and policy (absent: qemu-vtpm). */
  snp?: SnpVariantSetup;
  replayEventLog?: EventLogReplayer;
  requireEventLog?: boolean;
  now: Date;
  /** The stages to run (default: the variant's, VARIANT_STAGES). */
  plan?: StagePlan;
  facts?: AuditFacts;
  /** The requester's claims (schema-bounded), recorded once the AK is bound to a trusted EK. */
  claims?: AuditFacts;
}

/** What a verified attestation says: facts for policy, not a boolean. */
export interface AttestedState {
  variant: Variant;
  ak: AkIdentity;
  ekCert?: X509Certificate;
  /** The quote's signed facts (boot counters for the confirm round). */
  quote: QuotedFacts;
  /** SHA-256 PCRs 0-15 as good as signed by the TPM (they hash to the quoted pcrDigest). */
  pcrs: Record<string, string>;
  /** The PCRs the firmware event log was replayed against, or 'absent'. */
  eventLog: { comparedPcrs: number[]; replayed: Record<string, string> } | 'absent';
  snp?: SnpAttestedState;
  stages: ProofStage[];
}

interface ProofContext {
  readonly in: ProofInput;
  readonly facts: AuditFacts;
  snp?: VerifiedSnpEvidence;
  quote?: QuotedFacts;
  eventLog?: AttestedState['eventLog'];
}

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

// ---- the stage bodies round 2 and the confirm round share ----

/** verifyQuote: a TPM-generated quote signed by this AK over exactly `qualifyingData`. */
function quoteBy(tpm: TpmChecks, ak: AkIdentity, evidence: TpmQuoteEvidence, qualifyingData: Uint8Array): QuotedFacts {
  try {
    return tpm.verifyQuote(ak, b64(evidence.quoteAttest), b64(evidence.quoteSignature), qualifyingData);
  } catch (e) {
    return asInputError('QUOTE_SIGNATURE_INVALID', 'quote')(e);
  }
}

/** checkNonce: the nonce store's verdict (the nonce was consumed before any stage ran). */
function nonceAccepted(refusal: Error | undefined): void {
  if (refusal) throw refusal;
}

/** checkPcrDigest: the PCR values sent are the quoted ones. */
function pcrsSigned(quote: QuotedFacts, pcrs: Record<string, string>, facts: AuditFacts): void {
  checkPcrDigest(quote, pcrs);
  // From here the values are as good as signed by the TPM: the audit keeps them (and the
  // event log), stored once per distinct content and referenced by SHA-256.
  facts.evidence = { pcrs: pcrValuesEvidence(pcrs) };
}

export interface QuoteInput {
  /** An AK an earlier attestation bound to a trusted EK (the confirm round: the session's). */
  ak: AkIdentity;
  evidence: TpmQuoteEvidence;
  qualifyingData: Uint8Array;
  nonceRefusal?: Error;
  tpm: TpmChecks;
  facts?: AuditFacts;
}

/** The confirm round's part of the chain: verifyQuote -> checkNonce -> checkPcrDigest. */
export function verifyQuoteEvidence(i: QuoteInput): QuotedFacts {
  const facts = i.facts ?? {};
  const quote = stage('verifyQuote', () => quoteBy(i.tpm, i.ak, i.evidence, i.qualifyingData));
  stage('checkNonce', () => nonceAccepted(i.nonceRefusal));
  stage('checkPcrDigest', () => pcrsSigned(quote, i.evidence.pcrs, facts));
  return quote;
}

const PROOF: Record<ProofStage, (c: ProofContext) => void> = {
  credentialProof(c) {
    const got = b64(c.in.evidence.activatedCredential);
    const want = c.in.identity.credential;
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new SextantError({ code: 'AK_NOT_BOUND', message: 'credential activation failed: the AK is not in the TPM that holds the EK' });
    }
  },
  verifySnpEvidence(c) {
    const { snp: setup, evidence } = c.in;
    if (!setup) {
      if (evidence.snp) throw new SextantError({ code: 'VARIANT_EVIDENCE_UNEXPECTED', message: `this key service runs the ${c.in.variant} variant: it takes no SEV-SNP evidence` });
      return;
    }
    c.facts.variant = setup.variant;
    if (evidence.snp) c.facts.snpReportSha256 = createHash('sha256').update(b64(evidence.snp.report)).digest('hex');
    c.snp = verifyVariantEvidence(setup, evidence.snp, c.in.now);
    // Kept on a refusal at bindAk too, so an auditor sees what the report bound instead.
    c.facts.snp = snpAuditFacts(c.snp.state, c.snp.runtimeData);
  },
  bindAk(c) {
    bindAkToSnp(needs(c.in.snp, 'an SNP variant setup', 'bindAk'), needs(c.snp, 'verified SNP evidence', 'bindAk'), c.in.identity.akPublic);
  },
  verifyQuote(c) {
    // A TPM with a trusted EK holds the AK: its claims are worth recording from here on.
    Object.assign(c.facts, c.in.claims);
    c.quote = quoteBy(c.in.tpm, c.in.identity.ak, c.in.evidence, c.in.qualifyingData);
  },
  checkNonce(c) {
    nonceAccepted(c.in.nonceRefusal);
  },
  checkPcrDigest(c) {
    pcrsSigned(needs(c.quote, 'a verified quote', 'checkPcrDigest'), c.in.evidence.pcrs, c.facts);
  },
  replayEventLog(c) {
    const { eventLog, pcrs } = c.in.evidence;
    if (eventLog === undefined) {
      if (c.in.requireEventLog) throw new SextantError({ code: 'EVENTLOG_REQUIRED', message: 'this key service requires the firmware event log' });
      c.facts.eventLog = 'absent';
      c.eventLog = 'absent';
      return;
    }
    if (!c.in.replayEventLog) throw new SextantError({ code: 'INTERNAL', message: 'no event log replayer configured' });
    const logBytes = b64(eventLog);
    // The evidence itself, so an auditor can replay it with another tool later.
    ((c.facts.evidence ??= {}) as Record<string, Uint8Array>).eventLog = logBytes;
    const checked = checkEventLog(c.in.replayEventLog, logBytes, pcrs);
    c.eventLog = { comparedPcrs: checked.comparedPcrs, replayed: checked.replayed };
    c.facts.eventLogFormat = checked.format;
    c.facts.eventLogPcrs = checked.comparedPcrs;
  },
};

/** Round 2: the credential proof, the variant's CPU evidence, the quote and the event log. */
export function verifyProof(input: ProofInput): AttestedState {
  const c: ProofContext = { in: input, facts: input.facts ?? {} };
  const stages: ProofStage[] = [];
  for (const name of (input.plan ?? VARIANT_STAGES[input.variant]).proof) {
    stage(name, () => PROOF[name](c));
    stages.push(name);
  }
  return {
    variant: input.variant,
    ak: input.identity.ak,
    ekCert: input.identity.ekCert,
    quote: needs(c.quote, 'a verified quote', 'verifyProof'),
    pcrs: input.evidence.pcrs,
    eventLog: c.eventLog ?? 'absent',
    ...(c.snp && { snp: c.snp.state }),
    stages,
  };
}
