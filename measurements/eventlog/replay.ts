/**
 * Replays a parsed event log into the PCR values it should have produced, in every bank the
 * log declares (SHA-1/2, SM3, SHA-3); a bank this Node cannot hash is named, with the PCRs it
 * leaves unchecked, never skipped silently. EV_NO_ACTION events are never extended.
 *
 * PCR 0's start value (TCG PC Client Platform Firmware Profile, "Startup Locality" and H-CRTM):
 * all zero but the last byte, which is the locality the TPM was started from: 0 normally; 3
 * when the StartupLocality EV_NO_ACTION event says so (TPM2_Startup from locality 3); 4 when an
 * H-CRTM measured itself through _TPM_Hash_Start/End from locality 4, which the log records
 * as EV_EFI_HCRTM_EVENT (or StartupLocality 4). Every other PCR starts at zero.
 */
import { toHex, type HashAlg } from '../../lib/bytes.js';
import { bankHash, whyNotReplayable } from './banks.js';
import { parseEventLog, type EventLog, type EventLogFormat, type LogEvent } from './parse.js';
import { EV } from './types.js';

export const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';
/** The locality _TPM_Hash_Start runs at: PCR 0 of an H-CRTM platform starts at 0x00..04. */
export const HCRTM_LOCALITY = 4;

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

/** Why PCR 0 starts where it does. */
export interface Pcr0Start {
  locality: number;
  source: 'reset' | 'StartupLocality' | 'H-CRTM';
}

/** PCR 0's start value as the log announces it (see the module comment). */
export function pcr0Start(events: readonly LogEvent[]): Pcr0Start {
  if (events.some((e) => e.pcr === 0 && e.type === EV.EV_EFI_HCRTM_EVENT)) return { locality: HCRTM_LOCALITY, source: 'H-CRTM' };
  for (const e of events) {
    const l = e.pcr === 0 ? startupLocality(e) : undefined;
    if (l !== undefined) return { locality: l, source: 'StartupLocality' };
  }
  return { locality: 0, source: 'reset' };
}

/** A declared bank that could not be replayed, and the PCRs it leaves unchecked. */
export interface NotReplayed {
  alg: string;
  algId: number;
  reason: string;
  pcrs: number[];
}

/** PCR values in progress, per bank name: what a userspace log continues from. */
export type PcrState = Map<string, { algId: number; pcrs: Map<number, Buffer>; hash: (...p: Uint8Array[]) => Buffer; size: number }>;

export interface ReplayReport {
  format: EventLogFormat;
  /** Final PCR values per bank (`sha256`, `sm3_256`, ...) for every PCR the log touches, lowercase hex. */
  banks: Record<string, Record<string, string>>;
  notReplayed: NotReplayed[];
  pcr0: Pcr0Start;
}

/**
 * Extends every event of the log, in every bank this Node can hash, or in the `only` banks
 * (names as `sha256`): the key service compares SHA-256 alone, and a log's other banks
 * (SHA-1, SHA-384) were half of its replay time.
 */
export function replayState(log: EventLog, only?: readonly string[]): { state: PcrState; notReplayed: NotReplayed[]; pcr0: Pcr0Start } {
  const state: PcrState = new Map();
  const notReplayed: NotReplayed[] = [];
  const pcr0 = pcr0Start(log.events);
  const extended = log.events.filter(isExtended);
  for (const bank of log.banks) {
    if (only && !only.includes(bank.alg)) continue;
    const hash = bankHash(bank.algId);
    if (!hash) {
      const pcrs = [...new Set(extended.map((e) => e.pcr))].sort((a, b) => a - b);
      notReplayed.push({ alg: bank.alg, algId: bank.algId, reason: whyNotReplayable(bank.algId, bank.alg), pcrs });
      continue;
    }
    const pcrs = new Map<number, Buffer>();
    if (pcr0.source !== 'reset' || extended.some((e) => e.pcr === 0)) {
      const start = Buffer.alloc(bank.digestSize);
      start[start.length - 1] = pcr0.locality;
      pcrs.set(0, start);
    }
    for (const e of extended) {
      // parseEventLog guarantees every extended event has a digest for each declared bank.
      const d = e.digests.find((x) => x.algId === bank.algId)!;
      pcrs.set(e.pcr, hash(pcrs.get(e.pcr) ?? Buffer.alloc(bank.digestSize), d.digest));
    }
    state.set(bank.alg, { algId: bank.algId, pcrs, hash, size: bank.digestSize });
  }
  return { state, notReplayed, pcr0 };
}

/** The hex form of a PCR state, PCRs ascending. */
export function stateToBanks(state: PcrState): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [alg, { pcrs }] of state) {
    const bank: Record<string, string> = {};
    for (const pcr of [...pcrs.keys()].sort((x, y) => x - y)) bank[String(pcr)] = toHex(pcrs.get(pcr)!);
    out[alg] = bank;
  }
  return out;
}

export function replayReport(log: EventLog): ReplayReport {
  const { state, notReplayed, pcr0 } = replayState(log);
  return { format: log.format, banks: stateToBanks(state), notReplayed, pcr0 };
}

/** Final PCR values per bank for every PCR the log touches, lowercase hex. */
export function replayEventLog(log: EventLog): Record<string, Record<string, string>> {
  return replayReport(log).banks;
}

/** Parse + replay of one bank, the shape the key service's replayer takes (`{"0":"<hex>",...}`). */
export function replayBank(bytes: Uint8Array, bank: HashAlg = 'sha256'): Record<string, string> {
  return stateToBanks(replayState(parseEventLog(bytes), [bank]).state)[bank] ?? {};
}
