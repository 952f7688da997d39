import { isSextantError } from '../../lib/errors.js';
import { MAX_EK_CHAIN, type EventLogEvidence, type TpmIdentityEvidence, type TpmQuoteEvidence } from '../evidence.js';
import type { AttestationTpm } from './tpm.js';

/**
 * The producing side of attestation/evidence.ts (go-tpm-tools' client/ to verify.ts's server/):
 * what a TPM says about itself, in the one format every verifier reads. The agent, its
 * recovery endpoint and the key service's own attestation all produce evidence here.
 */

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * The TPM's identity: its AK public area and EK certificate, and the EK intermediates: those
 * the host was configured with, then those in the TPM's EK chain indices (at most MAX_EK_CHAIN,
 * each once), so a vendor intermediate the verifier cannot fetch travels with the certificate.
 */
export async function produceIdentity(tpm: AttestationTpm, ekChain: readonly Uint8Array[] = []): Promise<TpmIdentityEvidence> {
  const akPublic = b64(await tpm.akPublic());
  let ekCert: string;
  try {
    ekCert = b64(await tpm.ekCertificate());
  } catch (e) {
    // No certificate in NV (many firmware TPMs, AWS vTPMs): the EK's public area instead; the
    // verifier trusts it only where the variant needs no EK chain or an operator enrolled it.
    if (!isSextantError(e, 'TPM_NO_EK_CERT') || !tpm.ekPublic) throw e;
    return { ekPublic: b64(await tpm.ekPublic()), akPublic };
  }
  const chain = [...new Set([...ekChain, ...((await tpm.ekChain?.()) ?? [])].map(b64))].slice(0, MAX_EK_CHAIN);
  return { ekCert, ...(chain.length > 0 && { ekChain: chain }), akPublic };
}

/** A quote of SHA-256 PCRs 0-15 over `qualifyingData` with the PCR values it covers. */
export async function produceQuote(tpm: AttestationTpm, qualifyingData: Uint8Array): Promise<TpmQuoteEvidence> {
  const q = await tpm.quote(qualifyingData);
  return { quoteAttest: b64(q.attest), quoteSignature: b64(q.signature), pcrs: q.pcrs };
}

/** The firmware event log as evidence (absent stays absent: the verifier decides whether it needs one). */
export function eventLogEvidence(log: Uint8Array | undefined): EventLogEvidence {
  return log ? { eventLog: b64(log) } : {};
}
