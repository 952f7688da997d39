import { SextantError } from '../../lib/errors.js';
import { compareWithQuote } from '../../measurements/eventlog/compare.js';

/**
 * Replays a TCG event log: the log's format (measurements/eventlog: `crypto-agile`,
 * `tcg1.2-sha1`) and the SHA-256 PCR values it yields, keyed by index (only PCRs the log
 * extends). Supplied by measurements/eventlog.
 */
export type EventLogReplayer = (log: Uint8Array) => { format: string; pcrs: Record<string, string> };

/**
 * PCRs that userspace extends after the firmware log ends (10 IMA, 11 systemd-pcrphase,
 * 15 the cluster lock) cannot be reproduced from the firmware log alone and are skipped.
 */
export const REPLAY_SKIPPED_PCRS: ReadonlySet<number> = new Set([10, 11, 15]);

const ZERO = '0'.repeat(64);

/**
 * Every other quoted PCR (0-9, 12-14) must equal what the log replays to, and a PCR the log
 * never extends must still be zero: a log that leaves events out does not pass (the one
 * replay-against-quote comparison, measurements/eventlog/compare.ts compareWithQuote).
 */
export function checkEventLog(replay: EventLogReplayer, log: Uint8Array, quoted: Record<string, string>): { format: string; comparedPcrs: number[]; replayed: Record<string, string> } {
  const compared = Array.from({ length: 16 }, (_, i) => i).filter((i) => !REPLAY_SKIPPED_PCRS.has(i));
  const { format, pcrs } = replay(log);
  const c = compareWithQuote({ sha256: pcrs }, quoted, { bank: 'sha256', pcrs: compared });
  const bad = c.compared.filter((x) => !x.ok).map((x) => `PCR ${x.pcr}: log replays to ${x.replayed === ZERO ? 'zero (no events)' : x.replayed}, quoted ${x.quoted}`);
  if (bad.length) throw new SextantError({ code: 'EVENTLOG_REPLAY_MISMATCH', message: `event log (${format}) does not reproduce the quote: ${bad.join('; ')}` });
  return { format, comparedPcrs: compared, replayed: Object.fromEntries(c.compared.map((x) => [String(x.pcr), x.replayed])) };
}
