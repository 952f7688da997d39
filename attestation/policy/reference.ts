/**
 * The part of a signed measurements file the policy needs (structurally a subset of
 * measurements/format's MeasurementFile): expected SHA-256 PCR values and whether each is
 * enforced or warn-only.
 */
export interface ReferencePcr {
  expected: string;
  enforced: boolean;
  /** The signed per-component events, when the file lists them: they name what changed. */
  events?: ReferenceEvent[];
}

export interface ReferenceEvent {
  type: string;
  digest: string;
  description: string;
  component?: string;
}

export interface ReferenceSet {
  /** Names the set in warnings and the audit log: `<image name> <version> (<sha256 of file>)`. */
  label: string;
  pcrs: Record<string, ReferencePcr>;
}
