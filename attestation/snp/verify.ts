import { verify as cryptoVerify } from 'node:crypto';
import { bytesEqual, fromHex, toHex } from '../../lib/bytes.js';
import { SextantError, type SextantErrorCode } from '../../lib/errors.js';
import { checkValidity, verifyChain, type VerifiedChain } from './chain.js';
import { parseSignerCert, type SignerCert, type SignerKind } from './certs.js';
import { checkRevocation } from './crl.js';
import { decodeEvidence, type SnpEvidence } from './evidence.js';
import { findJwk, runtimeReportData, type Jwk, type RuntimeClaims } from './hcl.js';
import { SIG_ALGO_ECDSA_P384_SHA384, SNP_SIGNED_SIZE, SUPPORTED_REPORT_VERSIONS, type SnpReport } from './report.js';
import { PINNED_AMD_ROOTS, type AmdProduct, type PinnedRoot } from './roots.js';
import { POLICY_STAGES, policyFindings, policyStages, type PolicyFinding, type SnpPolicy } from './policy.js';
import { tcbDifferences, type TcbParts } from './tcb.js';

/**
 * Verifies SEV-SNP evidence as a chain of named stages; the first failing stage throws its
 * own code, and success returns the decoded, attested state (not a boolean) for the caller's
 * audit record and policy. Cryptography first (chain to a pinned AMD root, validity,
 * revocation, which key signed, the signature), then what the report binds (runtime data,
 * report_data), then policy on the now-authentic fields.
 */
export interface SnpVerifyOptions {
  /** The VCEK or VLEK certificate, DER or PEM. */
  signerCert: Uint8Array;
  /** The ASK (or ASVK) and ARK, PEM or concatenated DER. */
  chain?: Uint8Array;
  /** When certificate validity is judged (default now); recorded evidence: the time it was recorded. */
  at?: Date;
  roots?: readonly PinnedRoot[];
  /** AMD's CRL for the product (DER or PEM), signed by the ARK; revocation is unchecked without it. */
  crl?: Uint8Array;
  /** The 64 bytes report_data must equal (e.g. SHA-256 of runtime data or of an AK public key, zero-padded). */
  expectedReportData?: Uint8Array;
  policy?: SnpPolicy;
}

export interface CertSummary {
  commonName: string;
  sha256: string;
  notBefore: string;
  notAfter: string;
}

export interface SnpAttestedState {
  evidence: SnpEvidence['kind'];
  report: SnpReport;
  signer: CertSummary & { kind: SignerKind; productName: string; tcb: TcbParts; hwId?: string; cspId?: string };
  chain: { product: AmdProduct; intermediate: CertSummary; ark: CertSummary & { provenance: string } };
  /** The time certificate validity was judged at. */
  at: string;
  revocation: 'checked' | 'not-configured';
  /** Azure: the runtime data the report binds, with the vTPM attestation key. */
  runtime?: { claims: RuntimeClaims; akPub?: Jwk };
  /** The stages that passed, in order. */
  stages: SnpStage[];
}

export const AUTHENTICITY_STAGES = ['format', 'chain', 'validity', 'revocation', 'signer-binding', 'signature', 'runtime-data', 'report-data'] as const;
export const SNP_STAGES = [...AUTHENTICITY_STAGES, ...POLICY_STAGES] as const;
export type SnpStage = (typeof SNP_STAGES)[number];
export type { PolicyFinding, SnpPolicy };

function refuse(code: SextantErrorCode, message: string): never {
  throw new SextantError({ code, message });
}

function checkFormat(r: SnpReport, policy: SnpPolicy): void {
  const versions = policy.versions ?? SUPPORTED_REPORT_VERSIONS;
  if (!versions.includes(r.version)) refuse('SNP_REPORT_VERSION_UNSUPPORTED', `report version ${r.version} is not accepted (${versions.join(', ')})`);
  if (r.signatureAlgo !== SIG_ALGO_ECDSA_P384_SHA384) refuse('SNP_SIGNATURE_ALGO_UNSUPPORTED', `signature algorithm ${r.signatureAlgo} (only 1, ECDSA P-384 SHA-384, is defined)`);
}

/** The certificate must be the key the report says signed it, for this chip and this TCB. */
function bindSigner(r: SnpReport, signer: SignerCert, chain: VerifiedChain, policy: SnpPolicy): void {
  if (r.signingKey !== signer.kind) refuse('SNP_SIGNER_MISMATCH', `the report says it is signed by ${r.signingKey.toUpperCase()}, the certificate is a ${signer.kind.toUpperCase()}`);
  if (policy.signers && !policy.signers.includes(signer.kind)) refuse('SNP_SIGNER_MISMATCH', `${signer.kind.toUpperCase()}-signed reports are not accepted`);
  if (policy.products && !policy.products.includes(chain.product)) refuse('SNP_SIGNER_MISMATCH', `product ${chain.product} is not accepted`);
  if (r.cpuid) {
    const fromCpuid = r.cpuid.family === 0x1a ? 'Turin' : r.cpuid.family === 0x19 ? (r.cpuid.model >= 0x10 ? 'Genoa' : 'Milan') : undefined;
    if (fromCpuid !== chain.product) refuse('SNP_SIGNER_MISMATCH', `the report's CPUID (family 0x${r.cpuid.family.toString(16)} model 0x${r.cpuid.model.toString(16)}) is not a ${chain.product}`);
  }
  const diff = tcbDifferences(r.reportedTcb, signer.tcb);
  if (diff.length > 0) {
    refuse('SNP_TCB_MISMATCH', `reported TCB differs from the ${signer.kind.toUpperCase()}'s in ${diff.map((c) => `${c} (${r.reportedTcb[c]} vs ${signer.tcb[c]})`).join(', ')}`);
  }
  if (signer.kind === 'vcek') {
    const hw = fromHex(signer.hwId!);
    const chip = fromHex(r.chipId);
    // Turin VCEKs carry an 8-byte hwID: the first 8 bytes of CHIP_ID.
    if (!bytesEqual(hw, chip.subarray(0, hw.length))) refuse('SNP_CHIP_ID_MISMATCH', `CHIP_ID ${r.chipId.slice(0, 16)}... is not the VCEK's hwID ${signer.hwId!.slice(0, 16)}...`);
  }
}

function verifySignature(reportBytes: Uint8Array, signer: SignerCert): void {
  const be = (o: number): Buffer | undefined => {
    const le = reportBytes.subarray(o, o + 72);
    // P-384 components are 48 bytes; the upper 24 of the 72-byte fields are zero.
    if (le.subarray(48).some((b) => b !== 0)) return undefined;
    return Buffer.from(le.subarray(0, 48)).reverse();
  };
  const r = be(SNP_SIGNED_SIZE);
  const s = be(SNP_SIGNED_SIZE + 72);
  const ok =
    r !== undefined &&
    s !== undefined &&
    cryptoVerify('sha384', reportBytes.subarray(0, SNP_SIGNED_SIZE), { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
  if (!ok) refuse('SNP_SIGNATURE_INVALID', `the report's signature does not verify with the ${signer.kind.toUpperCase()} key`);
}

function summary(c: { commonName: string; sha256: string; x509: { validFrom: string; validTo: string } }): CertSummary {
  return { commonName: c.commonName, sha256: c.sha256, notBefore: new Date(c.x509.validFrom).toISOString(), notAfter: new Date(c.x509.validTo).toISOString() };
}

function runtimeOf(claims: RuntimeClaims): NonNullable<SnpAttestedState['runtime']> {
  const akPub = findJwk(claims, 'HCLAkPub');
  return { claims, ...(akPub && { akPub }) };
}

interface Authentic {
  ev: SnpEvidence;
  signer: SignerCert;
  chain: VerifiedChain;
  at: Date;
  stages: SnpStage[];
}

/** The cryptographic stages, from format to report-data: is this a genuine report, and what does it bind? */
function authenticate(evidenceBytes: Uint8Array, opts: SnpVerifyOptions): Authentic {
  const policy = opts.policy ?? {};
  const at = opts.at ?? new Date();
  const stages: SnpStage[] = [];
  const pass = (s: SnpStage): void => void stages.push(s);

  const ev = decodeEvidence(evidenceBytes);
  const r = ev.report;
  checkFormat(r, policy);
  pass('format');
  const signer = parseSignerCert(opts.signerCert);
  const chain = verifyChain(signer, opts.chain, opts.roots ?? PINNED_AMD_ROOTS);
  pass('chain');
  checkValidity([signer, chain.intermediate, chain.ark], at);
  pass('validity');
  if (opts.crl) {
    checkRevocation(opts.crl, chain, at);
    pass('revocation');
  }
  bindSigner(r, signer, chain, policy);
  pass('signer-binding');
  verifySignature(ev.reportBytes, signer);
  pass('signature');
  if (ev.kind === 'azure-hcl') {
    const want = runtimeReportData(ev.hcl.runtimeData, ev.hcl.hashType);
    if (toHex(want) !== r.reportData) refuse('SNP_RUNTIME_DATA_MISMATCH', `report_data is not the ${ev.hcl.hashType} of the HCL runtime data`);
    pass('runtime-data');
  }
  if (opts.expectedReportData) {
    if (opts.expectedReportData.length !== 64) refuse('INVALID_ARGUMENT', `expected report_data must be 64 bytes, not ${opts.expectedReportData.length}`);
    if (toHex(opts.expectedReportData) !== r.reportData) refuse('SNP_REPORT_DATA_MISMATCH', `report_data ${r.reportData.slice(0, 16)}... is not the expected ${toHex(opts.expectedReportData).slice(0, 16)}...`);
    pass('report-data');
  }
  return { ev, signer, chain, at, stages };
}

function attestedState({ ev, signer, chain, at, stages }: Authentic, opts: SnpVerifyOptions): SnpAttestedState {
  return {
    evidence: ev.kind,
    report: ev.report,
    signer: {
      ...summary(signer),
      kind: signer.kind,
      productName: signer.productName,
      tcb: signer.tcb,
      ...(signer.hwId && { hwId: signer.hwId }),
      ...(signer.cspId && { cspId: signer.cspId }),
    },
    chain: { product: chain.product, intermediate: summary(chain.intermediate), ark: { ...summary(chain.ark), provenance: chain.root.provenance } },
    at: at.toISOString(),
    revocation: opts.crl ? 'checked' : 'not-configured',
    ...(ev.kind === 'azure-hcl' && { runtime: runtimeOf(ev.hcl.runtimeClaims) }),
    stages,
  };
}

/**
 * Verifies authenticity and binding only (no policy): what `sextant attestation snp verify`
 * judges, with the policy findings reported beside it.
 */
export function verifySnpAuthenticity(evidenceBytes: Uint8Array, opts: SnpVerifyOptions): { state: SnpAttestedState; findings: PolicyFinding[] } {
  const a = authenticate(evidenceBytes, opts);
  return { state: attestedState(a, opts), findings: policyFindings(a.ev.report, opts.policy ?? {}) };
}

/** The whole chain: authenticity, binding, then policy; the first failing stage throws its code. */
export function verifySnpEvidence(evidenceBytes: Uint8Array, opts: SnpVerifyOptions): SnpAttestedState {
  const policy = opts.policy ?? {};
  const a = authenticate(evidenceBytes, opts);
  const [first] = policyFindings(a.ev.report, policy);
  if (first) refuse(first.code, first.message);
  a.stages.push(...policyStages(policy));
  return attestedState(a, opts);
}
