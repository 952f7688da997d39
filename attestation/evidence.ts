/**
 * The evidence format: what a TPM (and, on the SNP variants, the CPU) hands a verifier, as it
 * travels in JSON (binary fields base64, standard alphabet; PCR values lowercase hex). The
 * producer (attestation/tpm/produce.ts) makes it, the verifier stages (attestation/tpm/)
 * read it, and protocol/ builds its messages from these parts, so the agent, the key service
 * and `sextant recover` all speak one format.
 */

/** How many EK chain certificates evidence may carry (vendor chains are at most 3 CAs deep). */
export const MAX_EK_CHAIN = 4;

/** A TPM's identity: who signs the quote, and the certificate that says whose TPM it is. */
export interface TpmIdentityEvidence {
  /** EK certificate, DER, base64 (absent when the TPM has none: then ekPublic). */
  ekCert?: string;
  /**
   * The EK's TPMT_PUBLIC (TCG template L-1 or L-2), base64, for a TPM without an EK certificate
   * in NV: trusted only where the variant needs no EK chain (aws-sev-snp) or where the key is
   * enrolled in the node inventory.
   */
  ekPublic?: string;
  /** Intermediate CA certificates between the EK certificate and the verifier's EK CAs (DER, base64). */
  ekChain?: string[];
  /** The AK's TPMT_PUBLIC (without the TPM2B size), base64. */
  akPublic: string;
}

/** A TPM2_Quote and the PCR values it covers. */
export interface TpmQuoteEvidence {
  /** TPMS_ATTEST bytes as the TPM returned them (TPM2B_ATTEST contents), base64. */
  quoteAttest: string;
  /** TPMT_SIGNATURE over quoteAttest, base64. */
  quoteSignature: string;
  /** The quoted PCR values, SHA-256 bank, index -> lowercase hex (0-15). */
  pcrs: Record<string, string>;
}

/** The firmware's TCG event log, which must replay to the quoted PCRs. */
export interface EventLogEvidence {
  /** TCG crypto-agile event log, base64; absent on hosts without firmware logs (swtpm tests). */
  eventLog?: string;
}

/** A confidential VM's CPU evidence: what binds the AK on azure-sev-snp, aws-sev-snp, gcp-sev-snp. */
export interface SnpEvidenceMessage {
  /** A raw 1184-byte SNP report or Azure's HCL report (vTPM NV 0x01400001), base64. */
  report: string;
  /** The VCEK or VLEK certificate, DER, base64. */
  vcek: string;
  /** ASK/ASVK and ARK, DER each, base64. */
  chain?: string[];
  /** Azure with a raw report: the runtime-data JSON whose SHA-256 report_data holds, base64. */
  runtimeData?: string;
}

/** PCR values as evidence bytes: canonical JSON (indices ascending), so equal sets hash equal. */
export function pcrValuesEvidence(pcrs: Record<string, string>): Buffer {
  const keys = Object.keys(pcrs).sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1));
  return Buffer.from(JSON.stringify(Object.fromEntries(keys.map((k) => [k, pcrs[k]]))), 'utf8');
}
