/**
 * Constellation's published measurements, v2 shape (internal/attestation/measurements in
 * edgelesssys/constellation): one document per image version, one entry per cloud and
 * attestation variant, PCR values as hex with a warn-only flag (false = enforced).
 */
export interface ConstellationMeasurementsV2 {
  version: string;
  ref: string;
  stream: string;
  list: ConstellationEntry[];
}

export interface ConstellationEntry {
  /** Cloud: "AWS", "Azure", "GCP", "OpenStack", "QEMU". */
  csp: string;
  /** e.g. "qemu-vtpm", "aws-nitro-tpm", "gcp-sev-es", "azure-sev-snp". */
  attestationVariant: string;
  measurements: Record<string, ConstellationMeasurement>;
}

export interface ConstellationMeasurement {
  expected: string;
  warnOnly: boolean;
}

/** The entry picked when a document holds several and the caller names none. */
export const DEFAULT_CSP = 'QEMU';
export const DEFAULT_VARIANT = 'qemu-vtpm';
