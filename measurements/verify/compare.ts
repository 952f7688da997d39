import { componentOf } from '../format/from-prediction.js';
import type { MeasurementFile } from '../format/types.js';
import { diffEvents, type EventDifference } from './diff-events.js';
import type { PcrPrediction } from '../format/prediction.js';

/**
 * match / mismatch: the PCR is in the file and was recomputed. not-recomputed: in the file,
 * but the image does not determine it (firmware PCRs 0-7). not-in-file: recomputed only.
 */
export type PcrVerdict = 'match' | 'mismatch' | 'not-recomputed' | 'not-in-file';

export interface PcrVerdictRow {
  pcr: number;
  expected?: string;
  computed?: string;
  enforced?: boolean;
  verdict: PcrVerdict;
  /** For a mismatch: which components differ (empty when the file has no manifest for the PCR). */
  differences: EventDifference[];
  /** For a mismatch: whether the file carries an event manifest for this PCR. */
  hasManifest?: boolean;
}

export interface ComparisonReport {
  rows: PcrVerdictRow[];
  /** No enforced PCR mismatches (a warn-only mismatch is reported, not fatal). */
  ok: boolean;
}

/** Compares a file's expected PCRs with a recomputation of the image, PCR by PCR. */
export function compareWithPrediction(file: MeasurementFile, prediction: PcrPrediction): ComparisonReport {
  const indices = new Set([...Object.keys(file.pcrs), ...Object.keys(prediction.pcrs)].map(Number));
  const rows: PcrVerdictRow[] = [];
  for (const pcr of [...indices].sort((a, b) => a - b)) {
    const want = file.pcrs[String(pcr)];
    const computed = prediction.pcrs[String(pcr)]?.toLowerCase();
    if (!want) {
      rows.push({ pcr, computed, verdict: 'not-in-file', differences: [] });
      continue;
    }
    const base = { pcr, expected: want.expected, enforced: want.enforced };
    if (computed === undefined) rows.push({ ...base, verdict: 'not-recomputed', differences: [] });
    else if (computed === want.expected) rows.push({ ...base, computed, verdict: 'match', differences: [] });
    else {
      const measured = prediction.events
        .filter((e) => e.pcr === pcr)
        .map((e) => ({ ...e, digest: e.digest.toLowerCase(), component: componentOf(e) }));
      const differences = want.events ? diffEvents(want.events, measured) : [];
      rows.push({ ...base, computed, verdict: 'mismatch', differences, hasManifest: want.events !== undefined });
    }
  }
  return { rows, ok: rows.every((r) => r.verdict !== 'mismatch' || r.enforced === false) };
}
