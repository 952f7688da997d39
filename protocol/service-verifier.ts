import type { ServiceAttestResponse } from './messages.js';

/**
 * How the agent checks the key service's own attestation (mutual attestation). The agent
 * library only runs the rounds; the checks are the key service's own verifier stages
 * (keyservice/verify/service-attestation.ts), handed in by whoever wires the two (cli/), so
 * agent/ and keyservice/ stay peers that never import each other.
 */
export interface ServiceEvidenceVerifier {
  /**
   * EK chain, AK attributes, quote signature, qualifying data, pcrDigest, expected PCRs; throws
   * KEYSERVICE_* codes. Returns what the credential-activation round needs.
   */
  verify(evidence: ServiceAttestResponse, qualifyingData: Uint8Array): VerifiedServiceEvidence;
}

export interface VerifiedServiceEvidence {
  /** The measurement set the service's PCRs matched. */
  measurements: string;
  /** Hex TPM Name of the service's AK. */
  akName: string;
  warnings: string[];
  /** TPM2_MakeCredential to the EK in the service's certificate, for its AK. */
  makeCredential(secret: Uint8Array): { credentialBlob: Uint8Array; encryptedSecret: Uint8Array };
}
