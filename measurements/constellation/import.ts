import { parseJsonBytes, serializeMeasurementFile } from '../format/parse.js';
import { MEASUREMENT_FILE_VERSION, type MeasurementFile, type PcrExpectation } from '../format/types.js';
import { assertConstellationV2 } from './assert.js';
import { selectEntry, type EntrySelector } from './select-entry.js';
import type { ConstellationMeasurementsV2 } from './types.js';

export interface ImportOptions extends EntrySelector {
  /** image.name of the result (Constellation documents carry only a version). */
  imageName?: string;
}

/**
 * Converts one entry of a Constellation v2 document into a measurements file: expected
 * values kept, `warnOnly: false` becomes `enforced: true`; no event manifest (Constellation
 * has none). Where it came from goes into metadata so an export can restore it.
 */
export function fromConstellation(doc: ConstellationMeasurementsV2, opts: ImportOptions = {}): MeasurementFile {
  const entry = selectEntry(doc, opts);
  const pcrs: Record<string, PcrExpectation> = {};
  let hexLength = 64;
  for (const [pcr, m] of Object.entries(entry.measurements)) {
    pcrs[pcr] = { expected: m.expected, enforced: !m.warnOnly };
    hexLength = m.expected.length;
  }
  return {
    version: MEASUREMENT_FILE_VERSION,
    image: { name: opts.imageName ?? 'constellation', version: doc.version || 'unknown' },
    bank: hexLength === 96 ? 'sha384' : 'sha256',
    pcrs,
    metadata: {
      source: 'constellation',
      constellationRef: doc.ref,
      constellationStream: doc.stream,
      csp: entry.csp,
      attestationVariant: entry.attestationVariant,
    },
  };
}

/** Bytes of a Constellation document to the canonical bytes of a measurements file. */
export function importConstellationBytes(bytes: Uint8Array, opts: ImportOptions = {}): Buffer {
  const doc = parseJsonBytes(bytes, 'Constellation measurements');
  assertConstellationV2(doc);
  return serializeMeasurementFile(fromConstellation(doc, opts));
}
