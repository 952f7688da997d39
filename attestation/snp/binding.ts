import { createHash } from 'node:crypto';

/**
 * What an SNP report binds, as the agent asks for it and the key service checks it (the
 * definition lives once, here; docs/attestation-variants.md):
 *
 * - aws-sev-snp, gcp-sev-snp: report_data = SHA-512 of the AK's TPMT_PUBLIC, the exact bytes
 *   sent as `akPublic` in round 1 (64 bytes, so no padding).
 * - azure-sev-snp: the guest cannot choose report_data (the paravisor puts SHA-256 of its
 *   runtime data there); the user data written to the report request index is SHA-512(nonce),
 *   recorded in the runtime data as `user-data` by the platform.
 */
export function akReportData(akPublic: Uint8Array): Buffer {
  return createHash('sha512').update(akPublic).digest();
}

export function hclUserData(nonce: Uint8Array): Buffer {
  return createHash('sha512').update(nonce).digest();
}
