import { fail } from '../../lib/errors.js';
import { PcrMismatchError, type PcrMismatch } from './pcr-mismatch.js';
import type { ReferenceSet } from './reference.js';

/** PCR 15 is the cluster lock, decided by checkClusterLock, never by a measurements file. */
export const CLUSTER_LOCK_PCR = 15;

export interface MeasurementsVerdict {
  /** The set the node matched (during a rollout one of two). */
  matched: ReferenceSet;
  /** Warn-only PCRs that differ: logged and returned to the agent, not refused. */
  warnings: string[];
}

function compare(set: ReferenceSet, observed: Record<string, string>): { enforced: PcrMismatch[]; warned: PcrMismatch[] } {
  const enforced: PcrMismatch[] = [];
  const warned: PcrMismatch[] = [];
  for (const [index, ref] of Object.entries(set.pcrs)) {
    if (Number(index) === CLUSTER_LOCK_PCR) continue;
    const got = observed[index];
    if (got === ref.expected.toLowerCase()) continue;
    const m: PcrMismatch = { pcr: Number(index), expected: ref.expected.toLowerCase(), observed: got ?? '(not quoted)' };
    (ref.enforced ? enforced : warned).push(m);
  }
  return { enforced, warned };
}

/**
 * Compares the quoted PCRs with each accepted reference set (newest first). The node passes
 * when every enforced PCR of one set matches; otherwise every enforced mismatch against the
 * newest set is reported in one MEASUREMENTS_MISMATCH error.
 */
export function checkMeasurements(sets: readonly ReferenceSet[], observed: Record<string, string>): MeasurementsVerdict {
  if (sets.length === 0) fail('INTERNAL', 'checkMeasurements: no reference set loaded');
  let first: PcrMismatch[] | undefined;
  for (const set of sets) {
    const { enforced, warned } = compare(set, observed);
    if (enforced.length === 0) {
      return { matched: set, warnings: warned.map((m) => `PCR ${m.pcr} differs from ${set.label} (warn-only): expected ${m.expected}, quoted ${m.observed}`) };
    }
    first ??= enforced;
  }
  throw new PcrMismatchError(first ?? [], sets.map((s) => s.label));
}
