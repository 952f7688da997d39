import type { MeasurementFile } from '../format/types.js';
import { DEFAULT_CSP, DEFAULT_VARIANT, type ConstellationMeasurement, type ConstellationMeasurementsV2 } from './types.js';

export interface ExportOptions {
  csp?: string;
  attestationVariant?: string;
  ref?: string;
  stream?: string;
}

/**
 * A measurements file as a one-entry Constellation v2 document. Values not given come from
 * the file's metadata (set by an import), else QEMU / qemu-vtpm, ref "-", stream "stable".
 * Event manifests and image digests have no place in Constellation's shape and are dropped.
 */
export function toConstellation(file: MeasurementFile, opts: ExportOptions = {}): ConstellationMeasurementsV2 {
  const meta = file.metadata ?? {};
  const measurements: Record<string, ConstellationMeasurement> = {};
  for (const [pcr, m] of Object.entries(file.pcrs)) measurements[pcr] = { expected: m.expected, warnOnly: !m.enforced };
  return {
    version: file.image.version,
    ref: opts.ref ?? meta.constellationRef ?? '-',
    stream: opts.stream ?? meta.constellationStream ?? 'stable',
    list: [
      {
        csp: opts.csp ?? meta.csp ?? DEFAULT_CSP,
        attestationVariant: opts.attestationVariant ?? meta.attestationVariant ?? DEFAULT_VARIANT,
        measurements,
      },
    ],
  };
}

/** Constellation's field order (version, ref, stream, list), PCRs ascending, two-space indent. */
export function serializeConstellation(doc: ConstellationMeasurementsV2): Buffer {
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8');
}
