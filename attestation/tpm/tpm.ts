/**
 * The TPM operations producing evidence needs: the agent's attestation and recovery endpoint,
 * and the key service's own attestation (mutual attestation). The real one is
 * attestation/tpm/engine-tpm.ts (tpm/client over the TCTI transport); tests also drive swtpm
 * through tpm2-tools with the same shape. The AK lives from `akPublic` to `dispose`.
 */
export interface AttestationTpm {
  /** The EK certificate (DER) from its NV index. */
  ekCertificate(): Promise<Uint8Array>;
  /** The certificates of the TPM's EK chain indices (0x01C00100..), intermediates the key service may not have. */
  ekChain?(): Promise<Uint8Array[]>;
  /** The EK's TPMT_PUBLIC, for a TPM without an EK certificate (sent instead of it). */
  ekPublic?(): Promise<Uint8Array>;
  /** Creates (or loads) the AK under the EK hierarchy; returns its TPMT_PUBLIC bytes. */
  akPublic(): Promise<Uint8Array>;
  /** TPM2_ActivateCredential with the AK and the EK: returns the credential. */
  activateCredential(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Promise<Uint8Array>;
  /**
   * TPM2_Quote over SHA-256 PCRs 0-15 with the AK, and the PCR values it covers (index ->
   * lowercase hex; read so that they hash to the signed pcrDigest).
   */
  quote(qualifyingData: Uint8Array): Promise<{ attest: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> }>;
  /** Flushes the AK and anything else loaded. */
  dispose(): Promise<void>;
}
