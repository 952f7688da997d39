/**
 * The one alignment of expected events with measured ones (one PCR's worth), behind both
 * `measurements verify --image` (measurements/verify/diff-events.ts, the file against a
 * recomputation) and what a key service refusal names (attestation/policy/name-components.ts
 * and `eventlog compare`, the file against a firmware log), so the two name the same
 * components for the same change.
 *
 * Events are the same when their digests are equal and their types agree where both sides
 * know one. The lists are aligned on their longest common subsequence of same events, so one
 * inserted or dropped event does not make every later event look different. The leftovers
 * pair into `mismatch` (the component that changed) by name, then in order between two aligned
 * events (a firmware log does not name components the way a manifest does: `".cmdline"` for
 * `.cmdline`, a device path for `uki`; a changed Secure Boot authority is another name in the
 * same place). What remains is `missing` (expected, not measured) or `unexpected` (measured,
 * not expected).
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
 * matches, the paired mismatches, then the missing, then the unexpected events. `name` says
 * what a component is called on each side.
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
  // The stretches of unaligned events between aligned pairs; `match` ends a stretch.
  const stretches: { e: number[]; a: number[]; match?: [number, number] }[] = [{ e: [], a: [] }];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (same(expected[i], actual[j]) && lcs[i][j] === lcs[i + 1][j + 1] + 1) {
      stretches[stretches.length - 1].match = [i++, j++];
      stretches.push({ e: [], a: [] });
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) stretches[stretches.length - 1].e.push(i++);
    else stretches[stretches.length - 1].a.push(j++);
  }
  while (i < n) stretches[stretches.length - 1].e.push(i++);
  while (j < m) stretches[stretches.length - 1].a.push(j++);

  // Pair by name across the whole list (a component that moved is still that component) ...
  const pairOf = new Map<number, number>();
  const unpaired = stretches.flatMap((s) => s.a);
  for (const s of stretches) {
    for (const ei of s.e) {
      const k = unpaired.findIndex((aj) => name.actual(actual[aj]) === name.expected(expected[ei]));
      if (k >= 0) pairOf.set(ei, unpaired.splice(k, 1)[0]);
    }
  }
  const pairedActual = new Set(pairOf.values());
  const out: Aligned<E, A>[] = [];
  for (const s of stretches) {
    const e = s.e.filter((ei) => !pairOf.has(ei));
    const a = s.a.filter((aj) => !pairedActual.has(aj));
    // ... then in order within the stretch.
    while (e.length > 0 && a.length > 0) pairOf.set(e.shift()!, a.shift()!);
    for (const ei of s.e.filter((x) => pairOf.has(x))) {
      const aj = pairOf.get(ei)!;
      out.push({ status: 'mismatch', expected: expected[ei], actual: actual[aj], expectedIndex: ei, actualIndex: aj });
    }
    for (const ei of e) out.push({ status: 'missing', expected: expected[ei], expectedIndex: ei });
    for (const aj of a) out.push({ status: 'unexpected', actual: actual[aj], actualIndex: aj });
    if (s.match) out.push({ status: 'match', expected: expected[s.match[0]], actual: actual[s.match[1]], expectedIndex: s.match[0], actualIndex: s.match[1] });
  }
  return out;
}
