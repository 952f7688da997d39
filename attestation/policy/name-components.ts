import { matchEvents, parseEventLog, type ExpectedEvent } from '../../measurements/eventlog/index.js';
import type { PcrMismatch } from './pcr-mismatch.js';
import type { ReferenceSet } from './reference.js';

/** A component of the image whose measurement differs, found by aligning the log with the signed events. */
export interface ChangedComponent {
  pcr: number;
  component: string;
  status: 'mismatch' | 'missing' | 'unexpected';
  expected?: string;
  logged?: string;
}

/**
 * Events userspace extends after the firmware log ends: the signed file lists them, the
 * firmware log cannot hold them, so they are not compared here.
 */
const NOT_IN_FIRMWARE_LOG = new Set(['SYSTEMD_PCRPHASE']);

/**
 * For each mismatching PCR whose signed entry lists its events, the components whose event in
 * the firmware log differs (e.g. PCR 11 `.cmdline`). Best effort: an unreadable log names none
 * (the refusal itself already stands on the PCR values).
 */
export function nameChangedComponents(set: ReferenceSet, mismatches: readonly PcrMismatch[], eventLog: Uint8Array): ChangedComponent[] {
  const expected: ExpectedEvent[] = [];
  const pcrs: number[] = [];
  for (const m of mismatches) {
    const events = set.pcrs[String(m.pcr)]?.events;
    if (!events) continue;
    pcrs.push(m.pcr);
    for (const e of events) {
      if (NOT_IN_FIRMWARE_LOG.has(e.type) || e.type === 'EV_NO_ACTION') continue;
      expected.push({ pcr: m.pcr, type: e.type, digest: e.digest, description: e.component ?? e.description });
    }
  }
  if (pcrs.length === 0) return [];
  let report;
  try {
    report = matchEvents(expected, parseEventLog(eventLog).events, { pcrs });
  } catch {
    return [];
  }
  const out: ChangedComponent[] = [];
  for (const r of report.results) {
    if (r.status === 'match') continue;
    out.push({
      pcr: r.pcr,
      component: r.expected?.description ?? r.actual?.description ?? '(unknown)',
      status: r.status,
      ...(r.expected && { expected: r.expected.digest }),
      ...(r.actual && { logged: r.actual.digest }),
    });
  }
  return out;
}
