import { createHash, type KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { hclAkPublicKey, parseRuntimeClaims, runtimeReportData, type RuntimeClaims } from './hcl.js';
import { verifySnpEvidence, type SnpAttestedState } from './verify.js';
import { unmarshal } from '../../tpm/codec.js';
import { publicKeyFromTpmt } from '../../tpm/public-key.js';
import { TPMT_PUBLIC } from '../../tpm/structures.js';
import type { SnpEvidenceMessage } from '../evidence.js';
import { akReportData } from './binding.js';
import type { SnpVariantSetup } from '../variant.js';

/**
 * The SNP variants' stages of round 2 (attestation/tpm/verify.ts): verify the node's SEV-SNP evidence
 * with attestation/snp (chain to a pinned root, signature, the configured policy), then bind
 * the AK the node activated in round 1 to it:
 *
 * - azure-sev-snp: report_data[0:32] = SHA-256(runtime data) (checked by the verifier for an
 *   HCL report, here for a raw report sent with `runtimeData`), and the runtime data's
 *   `HCLAkPub` is the AK's public key (the key material is compared, not the encoding).
 * - aws-sev-snp, gcp-sev-snp: report_data = SHA-512 of the AK's TPMT_PUBLIC bytes exactly as
 *   round 1 sent them (64 bytes, no padding): attestation/snp/binding.ts `akReportData()`.
 */

/** What the audit record keeps: the typed, decoded state without the (up to 64 KiB) runtime claims. */
export type SnpAuditFacts = Omit<SnpAttestedState, 'runtime'> & { runtimeDataSha256?: string; akPub?: unknown };

/** The verified report, and the runtime data sent beside a raw report (Azure). */
export interface VerifiedSnpEvidence {
  state: SnpAttestedState;
  runtimeData?: Uint8Array;
}

function notBound(message: string): never {
  throw new SextantError({ code: 'VARIANT_AK_NOT_BOUND', message });
}

function spki(k: KeyObject): Buffer {
  return k.export({ type: 'spki', format: 'der' });
}

/** Stage `verifySnpEvidence`: authenticity and policy; its SNP_* code on failure. */
export function verifyVariantEvidence(setup: SnpVariantSetup, snp: SnpEvidenceMessage | undefined, at: Date): VerifiedSnpEvidence {
  if (!snp) throw new SextantError({ code: 'VARIANT_EVIDENCE_REQUIRED', message: `the ${setup.variant} variant requires the node's SEV-SNP evidence (snp) in round 2` });
  const report = Buffer.from(snp.report, 'base64');
  const chain = snp.chain ? Buffer.concat(snp.chain.map((c) => Buffer.from(c, 'base64'))) : undefined;
  const runtimeData = snp.runtimeData === undefined ? undefined : Buffer.from(snp.runtimeData, 'base64');
  const state = verifySnpEvidence(report, { signerCert: Buffer.from(snp.vcek, 'base64'), chain, crl: setup.crl, roots: setup.roots, policy: setup.policy, at });
  if (state.evidence === 'azure-hcl' && runtimeData) {
    throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'an HCL report carries its runtime data: send no separate runtimeData' });
  }
  if (runtimeData && toHex(runtimeReportData(runtimeData)) !== state.report.reportData) {
    throw new SextantError({ code: 'SNP_RUNTIME_DATA_MISMATCH', message: 'report_data is not the SHA-256 of the runtime data sent with it' });
  }
  return { state, ...(runtimeData && { runtimeData }) };
}

/** Stage `bindAk`: the verified report binds exactly the AK from round 1. */
export function bindAkToSnp(setup: SnpVariantSetup, v: VerifiedSnpEvidence, akPublic: Uint8Array): void {
  const { state } = v;
  if (setup.variant === 'azure-sev-snp') {
    let claims: RuntimeClaims;
    if (state.runtime) claims = state.runtime.claims;
    else if (v.runtimeData) claims = parseRuntimeClaims(v.runtimeData);
    else notBound('azure-sev-snp: a raw report needs its runtime data (runtimeData) to name the AK');
    const hclAk = hclAkPublicKey(claims);
    const ak = publicKeyFromTpmt(unmarshal(TPMT_PUBLIC, akPublic));
    if (!bytesEqual(spki(hclAk), spki(ak))) notBound('the runtime data\'s HCLAkPub is not the AK that was activated and signs the quote');
    return;
  }
  const want = akReportData(akPublic);
  if (toHex(want) !== state.report.reportData) notBound(`report_data ${state.report.reportData.slice(0, 16)}... is not SHA-512 of the AK public area (${toHex(want).slice(0, 16)}...)`);
}

export function snpAuditFacts(state: SnpAttestedState, runtimeData?: Uint8Array): SnpAuditFacts {
  // An HCL report's runtime data is bound by report_data itself; a separate one is hashed here.
  const { runtime, ...rest } = state;
  return { ...rest, ...(runtimeData && { runtimeDataSha256: createHash('sha256').update(runtimeData).digest('hex') }), ...(runtime?.akPub && { akPub: runtime.akPub }) };
}
