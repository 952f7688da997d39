/**
 * Replays a parsed event log into the PCR values it should have produced, per bank.
 * EV_NO_ACTION events are never extended; a StartupLocality EV_NO_ACTION event sets PCR 0's
 * starting value (all zero but the last byte, which holds the locality: 3 or 4 on platforms
 * whose CRTM starts the TPM from a higher locality).
 */
import { toHex } from '../../lib/bytes.js';
import { extend, zeroPcr, type PcrBanks } from '../pcr/extend.js';
import { parseEventLog, type EventLog, type LogEvent } from './parse.js';
import type { HashAlg } from '../../lib/bytes.js';
import { EV, REPLAYABLE } from './types.js';

export const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';

/** The locality a StartupLocality event announces, or undefined when the event is not one. */
export function startupLocality(e: LogEvent): number | undefined {
  if (e.type !== EV.EV_NO_ACTION || e.data.length < 17) return undefined;
  if (e.data.subarray(0, 16).toString('latin1') !== STARTUP_LOCALITY_SIGNATURE) return undefined;
  return e.data[16];
}

/** True for events that change a PCR (everything but EV_NO_ACTION). */
export function isExtended(e: LogEvent): boolean {
  return e.type !== EV.EV_NO_ACTION;
}

/** Final PCR values per bank for every PCR the log touches, lowercase hex. */
export function replayEventLog(log: EventLog): PcrBanks {
  const out: PcrBanks = {};
  for (const a of log.specId.algorithms) {
    const alg = REPLAYABLE.get(a.algId);
    if (!alg) continue; // a bank we cannot hash (SM3, SHA-3): parsed, not replayed
    const pcrs = new Map<number, Buffer>();
    for (const e of log.events) {
      const locality = e.pcr === 0 ? startupLocality(e) : undefined;
      if (locality !== undefined && !pcrs.has(0)) {
        const start = zeroPcr(alg);
        start[start.length - 1] = locality;
        pcrs.set(0, start);
      }
      if (!isExtended(e)) continue;
      const d = e.digests.find((x) => x.algId === a.algId);
      // parseEventLog guarantees every extended event has a digest for each listed bank.
      if (!d) continue;
      pcrs.set(e.pcr, extend(alg, pcrs.get(e.pcr) ?? zeroPcr(alg), d.digest));
    }
    const bank: Record<string, string> = {};
    for (const pcr of [...pcrs.keys()].sort((x, y) => x - y)) bank[String(pcr)] = toHex(pcrs.get(pcr)!);
    out[alg] = bank;
  }
  return out;
}

/** Parse + replay of one bank, the shape the key service's replayer takes (`{"0":"<hex>",...}`). */
export function replayBank(bytes: Uint8Array, bank: HashAlg = 'sha256'): Record<string, string> {
  return replayEventLog(parseEventLog(bytes))[bank] ?? {};
}
