/**
 * The one alignment of expected events with measured ones (one PCR's worth), behind both
 * `measurements verify --image` (measurements/verify/diff-events.ts, the file against a
 * recomputation) and what a key service refusal names (attestation/policy/name-components.ts
 * and `eventlog compare`, the file against a firmware log), so the two name the same
 * components for the same change.
 *
 * Events are the same when their digests are equal and their types agree where both sides
 * know one. The lists are aligned on their longest common subsequence of same events, so one
 * inserted or dropped event does not make every later event look different. Between two
 * aligned events, the leftovers are paired into `mismatch` (the component that changed): first
 * by name, then in order (a firmware log describes events differently from the manifest, e.g.
 * `".cmdline"` for `.cmdline`); what remains is `missing` (expected, not measured) or
 * `unexpected` (measured, not expected).
 */

export interface AlignableEvent {
  type?: string;
  digest: string;
}

export type AlignStatus = 'match' | 'mismatch' | 'missing' | 'unexpected';

export interface Aligned<E, A> {
  status: AlignStatus;
  expected?: E;
  actual?: A;
  /** Positions in the two input lists, for callers that keep either order. */
  expectedIndex?: number;
  actualIndex?: number;
}

function same(a: AlignableEvent, b: AlignableEvent): boolean {
  return a.digest.toLowerCase() === b.digest.toLowerCase() && (a.type === undefined || b.type === undefined || a.type === b.type);
}

/**
 * Aligns `expected` with `actual`, in measurement order: inside each stretch between two
 * matches, the paired mismatches, then the missing, then the unexpected events.
 * `name` says what a component is called on each side (for pairing leftovers by name).
 */
export function alignEvents<E extends AlignableEvent, A extends AlignableEvent>(
  expected: readonly E[],
  actual: readonly A[],
  name: { expected: (e: E) => string; actual: (a: A) => string },
): Aligned<E, A>[] {
  const n = expected.length;
  const m = actual.length;
  // lcs[i][j]: length of the LCS of expected[i..] and actual[j..]
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = same(expected[i], actual[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: Aligned<E, A>[] = [];
  let gapE: number[] = [];
  let gapA: number[] = [];
  const flush = (): void => {
    // Pair by name first, then in order; the rest is missing / unexpected.
    const pairs: [number, number][] = [];
    for (const i of [...gapE]) {
      const k = gapA.findIndex((j) => name.actual(actual[j]) === name.expected(expected[i]));
      if (k < 0) continue;
      pairs.push([i, gapA[k]]);
      gapA.splice(k, 1);
      gapE.splice(gapE.indexOf(i), 1);
    }
    while (gapE.length > 0 && gapA.length > 0) pairs.push([gapE.shift()!, gapA.shift()!]);
    pairs.sort((x, y) => x[0] - y[0]);
    for (const [i, j] of pairs) out.push({ status: 'mismatch', expected: expected[i], actual: actual[j], expectedIndex: i, actualIndex: j });
    for (const i of gapE) out.push({ status: 'missing', expected: expected[i], expectedIndex: i });
    for (const j of gapA) out.push({ status: 'unexpected', actual: actual[j], actualIndex: j });
    gapE = [];
    gapA = [];
  };
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (same(expected[i], actual[j]) && lcs[i][j] === lcs[i + 1][j + 1] + 1) {
      flush();
      out.push({ status: 'match', expected: expected[i], actual: actual[j], expectedIndex: i, actualIndex: j });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) gapE.push(i++);
    else gapA.push(j++);
  }
  while (i < n) gapE.push(i++);
  while (j < m) gapA.push(j++);
  flush();
  return out;
}
