import { IssueList } from '../format/errors.js';
import { checkNonEmptyString, describeValue, isPcrKey, isRecord, joinPath } from '../format/fields.js';
import type { ConstellationMeasurementsV2 } from './types.js';

/**
 * Checks a Constellation v2 measurements document and normalizes it in place the way
 * Constellation reads it: hex to lowercase, a missing `warnOnly` or a bare hex string
 * means enforced. Unknown fields are ignored (as Go's decoder does). Every invalid field
 * is listed in one MEASUREMENTS_INVALID error.
 */
export function assertConstellationV2(x: unknown, what = 'Constellation measurements'): asserts x is ConstellationMeasurementsV2 {
  const issues = new IssueList();
  if (!isRecord(x)) {
    issues.add('', `expected a JSON object, got ${describeValue(x)}`);
    issues.throwIfAny(what);
    return;
  }
  for (const k of ['version', 'ref', 'stream'] as const) {
    if (typeof x[k] !== 'string') issues.add(k, `expected a string, got ${describeValue(x[k])}`);
  }
  if (!Array.isArray(x.list) || x.list.length === 0) {
    issues.add('list', `expected a non-empty array of entries, got ${describeValue(x.list)}`);
  } else {
    x.list.forEach((entry, i) => checkEntry(entry, joinPath('list', i), issues));
  }
  issues.throwIfAny(what);
}

function checkEntry(entry: unknown, path: string, issues: IssueList): void {
  if (!isRecord(entry)) {
    issues.add(path, `expected an object {csp, attestationVariant, measurements}, got ${describeValue(entry)}`);
    return;
  }
  checkNonEmptyString(entry.csp, joinPath(path, 'csp'), issues);
  checkNonEmptyString(entry.attestationVariant, joinPath(path, 'attestationVariant'), issues);
  const mPath = joinPath(path, 'measurements');
  const ms = entry.measurements;
  if (!isRecord(ms) || Object.keys(ms).length === 0) {
    issues.add(mPath, `expected a non-empty object keyed by PCR index, got ${describeValue(ms)}`);
    return;
  }
  const lengths = new Set<number>();
  for (const [key, raw] of Object.entries(ms)) {
    const p = joinPath(mPath, key);
    if (!isPcrKey(key)) issues.add(p, 'PCR index must be a decimal number 0-23 without leading zeros');
    const m = typeof raw === 'string' ? { expected: raw, warnOnly: false } : raw;
    if (!isRecord(m)) {
      issues.add(p, `expected an object {expected, warnOnly}, got ${describeValue(raw)}`);
      continue;
    }
    const hex = m.expected;
    if (typeof hex === 'string' && /^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$/.test(hex)) lengths.add(hex.length);
    else issues.add(joinPath(p, 'expected'), `expected 64 or 96 hex digits, got ${describeValue(hex)}`);
    if (m.warnOnly !== undefined && typeof m.warnOnly !== 'boolean') {
      issues.add(joinPath(p, 'warnOnly'), `expected true or false, got ${describeValue(m.warnOnly)}`);
    }
    ms[key] = { expected: typeof hex === 'string' ? hex.toLowerCase() : hex, warnOnly: m.warnOnly ?? false };
  }
  if (lengths.size > 1) issues.add(mPath, 'all expected values of an entry must have the same length (one hash bank)');
}
