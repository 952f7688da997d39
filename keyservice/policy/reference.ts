/**
 * The part of a signed measurements file the policy needs (structurally a subset of
 * measurements/format's MeasurementFile): expected SHA-256 PCR values and whether each is
 * enforced or warn-only.
 */
export interface ReferencePcr {
  expected: string;
  enforced: boolean;
}

export interface ReferenceSet {
  /** Names the set in warnings and the audit log: `<image name> <version> (<sha256 of file>)`. */
  label: string;
  pcrs: Record<string, ReferencePcr>;
}
