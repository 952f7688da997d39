import { alignEvents } from '../eventlog/align.js';

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
 * How a PCR's events differ, by component (measurements/eventlog/align.ts, the alignment a key
 * service refusal uses too): `changed` are the expected-side names of mismatches; first every
 * expected event that differs (in expected order), then the unexpected ones (in measured order).
 */
export function diffEvents(expected: readonly ComparableEvent[], computed: readonly ComparableEvent[]): EventDifference[] {
  const aligned = alignEvents(expected, computed, { expected: eventName, actual: eventName }).filter((r) => r.status !== 'match');
  const withExpected = aligned.filter((r) => r.expected).sort((x, y) => x.expectedIndex! - y.expectedIndex!);
  const out: EventDifference[] = withExpected.map((r) =>
    r.actual
      ? { kind: 'changed', component: eventName(r.expected!), expectedDigest: r.expected!.digest, computedDigest: r.actual.digest }
      : { kind: 'missing', component: eventName(r.expected!), expectedDigest: r.expected!.digest },
  );
  for (const r of aligned) if (!r.expected) out.push({ kind: 'unexpected', component: eventName(r.actual!), computedDigest: r.actual!.digest });
  return out;
}
