import type { SnpPolicy } from './snp/policy.js';
import type { PinnedRoot } from './snp/roots.js';

/**
 * Attestation variants (docs/attestation-variants.md): how the key service comes to trust the
 * AK that signs a node's quote. `qemu-vtpm` is the EK certificate chain plus credential
 * activation alone. The SNP variants add the CPU's evidence: an AMD SEV-SNP report, chained to
 * a pinned AMD root, whose report_data binds the AK (directly, or through Azure's runtime data).
 */
export const VARIANTS = ['qemu-vtpm', 'azure-sev-snp', 'aws-sev-snp', 'gcp-sev-snp'] as const;
export type Variant = (typeof VARIANTS)[number];
export type SnpVariant = Exclude<Variant, 'qemu-vtpm'>;

export function isSnpVariant(v: Variant): v is SnpVariant {
  return v !== 'qemu-vtpm';
}

/** What the SNP stage needs at run time, loaded once at start. */
export interface SnpVariantSetup {
  variant: SnpVariant;
  policy: SnpPolicy;
  roots: readonly PinnedRoot[];
  crl?: Uint8Array;
  /** The SHA-256 of a test-only root, when one is configured (the start line reports it). */
  testOnlyRoot?: string;
}

