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

/** Every PCR the log extends must replay to the quoted value exactly. */
export function checkEventLog(replay: EventLogReplayer, log: Uint8Array, quoted: Record<string, string>): { comparedPcrs: number[] } {
  const replayed = replay(log);
  const compared: number[] = [];
  const bad: string[] = [];
  for (const [index, value] of Object.entries(replayed)) {
    const i = Number(index);
    if (REPLAY_SKIPPED_PCRS.has(i) || i > 15) continue;
    compared.push(i);
    if (quoted[index] !== value.toLowerCase()) bad.push(`PCR ${i}: log replays to ${value}, quoted ${quoted[index]}`);
  }
  if (bad.length) throw new SextantError({ code: 'EVENTLOG_REPLAY_MISMATCH', message: `event log does not reproduce the quote: ${bad.join('; ')}` });
  return { comparedPcrs: compared.sort((a, b) => a - b) };
}
