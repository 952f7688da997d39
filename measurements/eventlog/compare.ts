/**
 * Pure comparisons for attestation and `attest --dry-run`: a replay against quoted PCR values
 * (which PCR differs first), and a log's events against expected per-component events (which
 * component differs). No I/O, no printing.
 */
import { toHex } from '../../lib/bytes.js';
import { describeEvent } from './describe.js';
import type { LogEvent } from './parse.js';
import { isExtended } from './replay.js';
import { alignEvents } from './align.js';

/** The value a PCR holds after reset when nothing extended it: 0xFF.. for the D-RTM PCRs 17-22, else zero. */
export function resetValue(pcr: number, digestSize: number): string {
  return (pcr >= 17 && pcr <= 22 ? 'ff' : '00').repeat(digestSize);
}

/** One PCR of a replay against a quote (a measurements file against a recomputation is measurements/verify PcrVerdictRow). */
export interface QuotedPcrComparison {
  pcr: number;
  replayed: string;
  /** Undefined when the quote lacks a PCR that was asked for. */
  quoted: string | undefined;
  ok: boolean;
}

export interface QuoteComparison {
  /** A bank name as the replay keys it: sha1, sha256, ..., sm3_256, sha3_256. */
  bank: string;
  ok: boolean;
  compared: QuotedPcrComparison[];
  /** The lowest-numbered PCR that differs. */
  firstMismatch?: QuotedPcrComparison;
}

/**
 * Compares one bank of a replay with quoted values (`{"0":"<hex>",...}`). By default compares
 * the PCRs the log touches; `pcrs` selects others (an untouched PCR replays to its reset value).
 */
export function compareWithQuote(
  replay: Readonly<Record<string, Record<string, string> | undefined>>,
  quoted: Record<string, string>,
  opts: { bank?: string; pcrs?: number[] } = {},
): QuoteComparison {
  const bank = opts.bank ?? 'sha256';
  const replayed = replay[bank] ?? {};
  const size = Object.values(quoted)[0]?.length ?? Object.values(replayed)[0]?.length ?? 64;
  const pcrs = opts.pcrs ?? Object.keys(replayed).map(Number);
  const compared = [...new Set(pcrs)]
    .sort((a, b) => a - b)
    .map((pcr): QuotedPcrComparison => {
      const r = replayed[String(pcr)] ?? resetValue(pcr, size / 2);
      const q = quoted[String(pcr)]?.toLowerCase().replace(/^0x/, '');
      return { pcr, replayed: r, quoted: q, ok: q === r };
    });
  const firstMismatch = compared.find((c) => !c.ok);
  return { bank, ok: firstMismatch === undefined, compared, ...(firstMismatch && { firstMismatch }) };
}

/** One-line explanation of a quote comparison, naming the first differing PCR. */
export function explainQuoteComparison(c: QuoteComparison): string {
  const m = c.firstMismatch;
  if (!m) return `event log reproduces ${c.bank} PCRs ${c.compared.map((x) => x.pcr).join(',')}`;
  if (m.quoted === undefined) return `${c.bank} PCR ${m.pcr} was not quoted (log replays to ${m.replayed})`;
  return `${c.bank} PCR ${m.pcr}: log replays to ${m.replayed}, quoted ${m.quoted}`;
}

/** An event a correct boot should log (from the precompute or the reference manifest). */
export interface ExpectedEvent {
  pcr: number;
  type?: string;
  /** Digest in the compared bank, hex. */
  digest: string;
  description?: string;
}

export interface ActualEvent {
  index: number;
  type: string;
  digest: string;
  description: string;
}

export type EventMatchStatus = 'match' | 'mismatch' | 'missing' | 'unexpected';

export interface EventMatch {
  status: EventMatchStatus;
  pcr: number;
  expected?: ExpectedEvent;
  actual?: ActualEvent;
}

export interface EventMatchReport {
  bank: string;
  ok: boolean;
  /** PCRs compared, ascending. */
  pcrs: number[];
  /** Per PCR in order of the log: every expected and every logged event, paired where possible. */
  results: EventMatch[];
}

function actualOf(e: LogEvent, bank: string): ActualEvent {
  const d = e.digests.find((x) => x.alg === bank);
  return { index: e.index, type: e.typeName, digest: d ? toHex(d.digest) : '', description: describeEvent(e) };
}

/**
 * Aligns expected events with logged ones, per PCR (measurements/eventlog/align.ts: the one
 * alignment `measurements verify --image` uses too). Compares the PCRs the expectations cover
 * unless `pcrs` is given.
 */
export function matchEvents(
  expected: ExpectedEvent[],
  events: LogEvent[],
  opts: { bank?: string; pcrs?: number[] } = {},
): EventMatchReport {
  const bank = opts.bank ?? 'sha256';
  const pcrs = [...new Set(opts.pcrs ?? expected.map((e) => e.pcr))].sort((a, b) => a - b);
  const results: EventMatch[] = [];
  for (const pcr of pcrs) {
    const exp = expected.filter((e) => e.pcr === pcr).map((e) => ({ ...e, digest: e.digest.toLowerCase() }));
    const act = events.filter((e) => e.pcr === pcr && isExtended(e)).map((e) => actualOf(e, bank));
    for (const r of alignEvents(exp, act, { expected: (e) => e.description ?? '', actual: (a) => a.description })) {
      results.push({ status: r.status, pcr, ...(r.expected && { expected: r.expected }), ...(r.actual && { actual: r.actual }) });
    }
  }
  return { bank, ok: results.every((r) => r.status === 'match'), pcrs, results };
}

/** One line per result, naming the component (the expected event's description). */
export function explainEventMatch(m: EventMatch): string {
  const what = (e: ExpectedEvent): string => `${e.type ?? 'event'} ${e.description ? JSON.stringify(e.description) : ''}`.trim();
  const got = (a: ActualEvent): string => `event ${a.index} ${a.type} ${a.description}`;
  switch (m.status) {
    case 'match':
      return `PCR ${m.pcr}: ${what(m.expected!)} matches ${got(m.actual!)}`;
    case 'mismatch':
      return `PCR ${m.pcr}: ${what(m.expected!)} expected digest ${m.expected!.digest}, log has ${m.actual!.digest} (${got(m.actual!)})`;
    case 'missing':
      return `PCR ${m.pcr}: ${what(m.expected!)} (digest ${m.expected!.digest}) is not in the log`;
    case 'unexpected':
      return `PCR ${m.pcr}: ${got(m.actual!)} (digest ${m.actual!.digest}) was not expected`;
  }
}
