import type { IssueList } from './errors.js';

/** Validation helpers shared by the measurements-file and Constellation checkers. */

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

/** Reports every key of `obj` that the format does not define (typos must not pass silently). */
export function rejectUnknownKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string, issues: IssueList): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) issues.add(joinPath(path, k), 'unknown field');
  }
}

export function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return x.length > 40 ? `"${x.slice(0, 40)}..."` : JSON.stringify(x);
  return typeof x === 'object' ? 'an object' : `${typeof x} ${String(x)}`;
}

/** Lowercase hex of exactly `bytes` bytes (canonical: one spelling per value). */
export function isHexOfSize(x: unknown, bytes: number): x is string {
  return typeof x === 'string' && x.length === bytes * 2 && /^[0-9a-f]*$/.test(x);
}

export function checkHex(x: unknown, bytes: number, path: string, issues: IssueList): x is string {
  if (isHexOfSize(x, bytes)) return true;
  issues.add(path, `expected ${bytes * 2} lowercase hex digits, got ${describeValue(x)}`);
  return false;
}

export function checkNonEmptyString(x: unknown, path: string, issues: IssueList): x is string {
  if (typeof x === 'string' && x.length > 0) return true;
  issues.add(path, `expected a non-empty string, got ${describeValue(x)}`);
  return false;
}

/** A PCR index as an object key: decimal without leading zeros, 0-23. */
export function isPcrKey(k: string): boolean {
  return /^(0|[1-9]\d?)$/.test(k) && Number(k) <= 23;
}
