import { SextantError } from '../../lib/errors.js';

/**
 * Replays a TCG event log and returns the SHA-256 PCR values it yields, keyed by index (only
 * PCRs the log extends). Supplied by measurements/eventlog.
 */
export type EventLogReplayer = (log: Uint8Array) => Record<string, string>;

/**
 * PCRs that userspace extends after the firmware log ends (10 IMA, 11 systemd-pcrphase,
 * 15 the cluster lock) cannot be reproduced from the firmware log alone and are skipped.
 */
export const REPLAY_SKIPPED_PCRS: ReadonlySet<number> = new Set([10, 11, 15]);

const ZERO = '0'.repeat(64);

/**
 * Every other quoted PCR (0-9, 12-14) must equal what the log replays to, and a PCR the log
 * never extends must still be zero: a log that leaves events out does not pass.
 */
export function checkEventLog(replay: EventLogReplayer, log: Uint8Array, quoted: Record<string, string>): { comparedPcrs: number[]; replayed: Record<string, string> } {
  const replayed = replay(log);
  const compared: number[] = [];
  const bad: string[] = [];
  for (let i = 0; i < 16; i++) {
    if (REPLAY_SKIPPED_PCRS.has(i)) continue;
    compared.push(i);
    const want = (replayed[String(i)] ?? ZERO).toLowerCase();
    if (quoted[String(i)] !== want) bad.push(`PCR ${i}: log replays to ${want === ZERO ? 'zero (no events)' : want}, quoted ${quoted[String(i)]}`);
  }
  if (bad.length) throw new SextantError({ code: 'EVENTLOG_REPLAY_MISMATCH', message: `event log does not reproduce the quote: ${bad.join('; ')}` });
  return { comparedPcrs: compared, replayed: Object.fromEntries(compared.map((i) => [String(i), (replayed[String(i)] ?? ZERO).toLowerCase()])) };
}
