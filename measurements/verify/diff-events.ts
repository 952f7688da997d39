/** An event as both the manifest and a recomputation (or an event log) describe it. */
export interface ComparableEvent {
  type: string;
  digest: string;
  description: string;
  component?: string;
}

/**
 * How two event lists of one PCR differ, named by component:
 * `changed` (the component is measured, with another digest), `missing` (expected, not
 * measured) or `unexpected` (measured, not expected).
 */
export interface EventDifference {
  kind: 'changed' | 'missing' | 'unexpected';
  component: string;
  expectedDigest?: string;
  computedDigest?: string;
}

export function eventName(e: ComparableEvent): string {
  return e.component ?? (e.description || e.type);
}

/**
 * Aligns the two lists on their longest common subsequence of (type, digest), so one
 * inserted or dropped event does not make every later event look different; the leftovers
 * are paired by name into `changed`, the rest are `missing` / `unexpected`.
 */
export function diffEvents(expected: readonly ComparableEvent[], computed: readonly ComparableEvent[]): EventDifference[] {
  const same = (a: ComparableEvent, b: ComparableEvent): boolean => a.type === b.type && a.digest === b.digest;
  const n = expected.length;
  const m = computed.length;
  // lcs[i][j]: length of the LCS of expected[i..] and computed[j..]
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = same(expected[i], computed[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const missing: ComparableEvent[] = [];
  const unexpected: ComparableEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (same(expected[i], computed[j])) {
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) missing.push(expected[i++]);
    else unexpected.push(computed[j++]);
  }
  missing.push(...expected.slice(i));
  unexpected.push(...computed.slice(j));

  const out: EventDifference[] = [];
  for (const e of missing) {
    const k = unexpected.findIndex((c) => eventName(c) === eventName(e));
    if (k >= 0) {
      const [c] = unexpected.splice(k, 1);
      out.push({ kind: 'changed', component: eventName(e), expectedDigest: e.digest, computedDigest: c.digest });
    } else out.push({ kind: 'missing', component: eventName(e), expectedDigest: e.digest });
  }
  for (const c of unexpected) out.push({ kind: 'unexpected', component: eventName(c), computedDigest: c.digest });
  return out;
}
