/** The JSON shape of parsed events (`eventlog show --json`), hex for every byte string. */
import { toHex } from '../../lib/bytes.js';
import { describeEvent } from './describe.js';
import type { EventLog, EventLogFormat, LogEvent, SpecIdEvent } from './parse.js';

export interface EventJson {
  index: number;
  offset: number;
  pcr: number;
  type: string;
  typeCode: number;
  /** Digest per bank, keyed by algorithm name (`sha256`), lowercase hex. */
  digests: Record<string, string>;
  description: string;
  data: string;
}

export interface SpecIdJson {
  signature: string;
  platformClass: number;
  specVersion: string;
  uintnSize: number;
  algorithms: { alg: string; algId: number; digestSize: number }[];
}

export function eventToJson(e: LogEvent): EventJson {
  return {
    index: e.index,
    offset: e.offset,
    pcr: e.pcr,
    type: e.typeName,
    typeCode: e.type,
    digests: Object.fromEntries(e.digests.map((d) => [d.alg, toHex(d.digest)])),
    description: describeEvent(e),
    data: toHex(e.data),
  };
}

export function specIdToJson(s: SpecIdEvent): SpecIdJson {
  const v = s.specVersion;
  return {
    signature: s.signature,
    platformClass: s.platformClass,
    specVersion: `${v.major}.${v.minor}.${v.errata}`,
    uintnSize: s.uintnSize,
    algorithms: s.algorithms.map((a) => ({ alg: a.alg, algId: a.algId, digestSize: a.digestSize })),
  };
}

export interface EventLogJson {
  format: EventLogFormat;
  /** Absent in a TCG 1.2 log that does not open with a Spec ID event. */
  specId?: SpecIdJson;
  banks: string[];
  events: EventJson[];
}

export function eventLogToJson(log: EventLog, keep: (e: LogEvent) => boolean = () => true): EventLogJson {
  return {
    format: log.format,
    ...(log.specId && { specId: specIdToJson(log.specId) }),
    banks: log.banks.map((b) => b.alg),
    events: log.events.filter(keep).map(eventToJson),
  };
}
