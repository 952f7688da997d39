/**
 * Parser for TCG firmware event logs, in both formats the PC Client Platform Firmware Profile
 * defines (all little-endian):
 * - crypto-agile (section 10.2): one legacy TCG_PCR_EVENT carrying TCG_EfiSpecIdEvent
 *   ("Spec ID Event03"), then TCG_PCR_EVENT2 records with one digest per bank. The Spec ID
 *   event's algorithm list is the only source of digest sizes, so banks we cannot hash parse too.
 * - TCG 1.2 / SHA-1 (the log of TPM 1.2 machines, and of TPM 2.0 firmware that logs in the
 *   EFI_TCG2_EVENT_LOG_FORMAT_TCG_1_2 format): TCG_PCR_EVENT records only, one SHA-1 digest
 *   each, optionally opened by a "Spec ID Event00"/"Spec ID Event02" EV_NO_ACTION event.
 * Logs of formats we recognize but do not replay (CEL, IMA) fail with EVENTLOG_FORMAT_UNSUPPORTED.
 */
import { fail } from '../../lib/errors.js';
import { ByteReader } from './reader.js';
import { refuseUnsupportedFormat } from './formats.js';
import { BANKS_BY_ID, EV, algName, eventTypeName } from './types.js';

export interface SpecIdAlgorithm {
  algId: number;
  /** `sha256`, or `alg_0x....` for an algorithm this project does not know. */
  alg: string;
  digestSize: number;
}

export interface SpecIdEvent {
  /** "Spec ID Event03" (crypto-agile), "Spec ID Event02" or "Spec ID Event00" (SHA-1 logs). */
  signature: string;
  platformClass: number;
  specVersion: { major: number; minor: number; errata: number };
  uintnSize: number;
  algorithms: SpecIdAlgorithm[];
  vendorInfo: Buffer;
}

export interface EventDigest {
  algId: number;
  alg: string;
  digest: Buffer;
}

export interface LogEvent {
  /** Position in the log; 0 is the Spec ID event. */
  index: number;
  /** Byte offset of the record in the log. */
  offset: number;
  pcr: number;
  type: number;
  typeName: string;
  digests: EventDigest[];
  data: Buffer;
}

/** `crypto-agile`: TCG_PCR_EVENT2 records; `tcg1.2-sha1`: TCG_PCR_EVENT records (SHA-1 only). */
export type EventLogFormat = 'crypto-agile' | 'tcg1.2-sha1';

export interface EventLog {
  format: EventLogFormat;
  /** The Spec ID event: always in a crypto-agile log; in a TCG 1.2 log only when it opens with one (no algorithm list). */
  specId?: SpecIdEvent;
  /** The banks every extended event has a digest for, in the log's order. */
  banks: SpecIdAlgorithm[];
  events: LogEvent[];
  /** Zero (or 0xFF) bytes after the last event, as firmware or securityfs may leave them. */
  trailingPadding: number;
}

export const SPEC_ID_SIGNATURE = 'Spec ID Event03\0';
/** TCG_EfiSpecIdEventStruct signatures of SHA-1 logs (TCG EFI Platform 1.22; PC Client PFP for TPM 2.0). */
const LEGACY_SPEC_ID_SIGNATURES = ['Spec ID Event00\0', 'Spec ID Event02\0'];
const LEGACY_DIGEST_SIZE = 20;
const SHA1_BANK: SpecIdAlgorithm = { algId: 0x0004, alg: 'sha1', digestSize: 20 };
const MAX_PCR = 23;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function truncated(what: string, offset: number, need: number): never {
  fail('EVENTLOG_TRUNCATED', `event log ends inside ${what} at offset ${offset} (${hex(offset)}): ${need} more bytes needed`);
}

function malformed(offset: number, message: string): never {
  fail('EVENTLOG_MALFORMED', `${message} at offset ${offset} (${hex(offset)})`);
}

/** Decodes the TCG_EfiSpecIdEvent in the first event's data (`base` = its offset in the log). */
export function parseSpecIdEvent(data: Buffer, base: number): SpecIdEvent {
  // Inside a sized event a short read means the event lies about its content: malformed.
  const r = new ByteReader(data, (what, offset) => malformed(offset, `Spec ID event too short for ${what}`), base);
  const sig = r.bytes(16, 'signature').toString('latin1');
  if (sig !== SPEC_ID_SIGNATURE) malformed(base, `first event is not "Spec ID Event03" but "${sig.replace(/[^\x20-\x7e]/g, '.')}"`);
  const platformClass = r.u32('platformClass');
  const minor = r.u8('specVersionMinor');
  const major = r.u8('specVersionMajor');
  const errata = r.u8('specErrata');
  const uintnSize = r.u8('uintnSize');
  const countAt = r.offset;
  const count = r.u32('numberOfAlgorithms');
  if (count === 0) malformed(countAt, 'Spec ID event lists no algorithms');
  if (count * 4 > r.remaining) malformed(countAt, `Spec ID event lists ${count} algorithms but has room for ${Math.floor(r.remaining / 4)}`);
  const algorithms: SpecIdAlgorithm[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    const algId = r.u16('algorithmId');
    const digestSize = r.u16('digestSize');
    const alg = algName(algId);
    if (algorithms.some((a) => a.algId === algId)) malformed(at, `Spec ID event lists ${alg} twice`);
    const known = BANKS_BY_ID.get(algId);
    if (known && known.digestSize !== digestSize) malformed(at, `Spec ID event gives ${alg} a digest size of ${digestSize}`);
    if (digestSize === 0 || digestSize > 64) malformed(at, `Spec ID event gives ${alg} an implausible digest size of ${digestSize}`);
    algorithms.push({ algId, alg, digestSize });
  }
  // vendorInfoSize is absent in a few early firmware logs: tolerate its absence.
  let vendorInfo: Buffer = Buffer.alloc(0);
  if (r.remaining > 0) vendorInfo = r.bytes(r.u8('vendorInfoSize'), 'vendorInfo');
  return { signature: sig.replace(/\0+$/, ''), platformClass, specVersion: { major, minor, errata }, uintnSize, algorithms, vendorInfo };
}

/** TCG_EfiSpecIdEventStruct of a SHA-1 log: no algorithm list, the bank is SHA-1. */
export function parseLegacySpecIdEvent(data: Buffer, base: number): SpecIdEvent {
  const r = new ByteReader(data, (what, offset) => malformed(offset, `Spec ID event too short for ${what}`), base);
  const signature = r.bytes(16, 'signature').toString('latin1').replace(/\0+$/, '');
  const platformClass = r.u32('platformClass');
  const minor = r.u8('specVersionMinor');
  const major = r.u8('specVersionMajor');
  const errata = r.u8('specErrata');
  const uintnSize = r.u8('uintnSize');
  const vendorInfo = r.remaining > 0 ? r.bytes(r.u8('vendorInfoSize'), 'vendorInfo') : Buffer.alloc(0);
  return { signature, platformClass, specVersion: { major, minor, errata }, uintnSize, algorithms: [SHA1_BANK], vendorInfo };
}

function isPadding(b: Buffer): boolean {
  const first = b[0];
  if (first !== 0x00 && first !== 0xff) return false;
  for (const x of b) if (x !== first) return false;
  return true;
}

/** The size-prefixed event data that ends both record formats. */
function eventData(r: ByteReader, index: number, typeName: string, offset: number): Buffer {
  const sizeAt = r.offset;
  const size = r.u32(`event ${index} (eventSize)`);
  if (size > r.remaining) {
    fail(
      'EVENTLOG_TRUNCATED',
      `event ${index} (${typeName}) at offset ${offset} (${hex(offset)}) declares ${size} bytes of event data at offset ${sizeAt} but only ${r.remaining} remain`,
    );
  }
  return r.bytes(size, `event ${index} (event data)`);
}

/** Reads one TCG_PCR_EVENT (the record of a TCG 1.2 log, and the first record of every log). */
function legacyEvent(r: ByteReader, index: number): LogEvent {
  const offset = r.offset;
  const what = (field: string): string => `event ${index} (${field})`;
  const pcr = r.u32(what('pcrIndex'));
  const type = r.u32(what('eventType'));
  const typeName = eventTypeName(type);
  if (type !== EV.EV_NO_ACTION && pcr > MAX_PCR) malformed(offset, `event ${index} (${typeName}) extends PCR ${pcr}, beyond PCR ${MAX_PCR}`);
  const digest = r.bytes(LEGACY_DIGEST_SIZE, what('sha1 digest'));
  const data = eventData(r, index, typeName, offset);
  return { index, offset, pcr, type, typeName, digests: [{ algId: SHA1_BANK.algId, alg: 'sha1', digest }], data };
}

/** Parses a whole event log (either format); throws EVENTLOG_TRUNCATED / _MALFORMED / _FORMAT_UNSUPPORTED. */
export function parseEventLog(bytes: Uint8Array): EventLog {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) fail('EVENTLOG_TRUNCATED', 'event log is empty');
  if (isPadding(buf)) malformed(0, `event log holds no events, only ${buf.length} bytes of 0x${buf[0].toString(16).padStart(2, '0')} padding`);
  refuseUnsupportedFormat(buf);
  const r = new ByteReader(buf, truncated);
  const first = legacyEvent(r, 0);
  const sig = first.data.subarray(0, 16).toString('latin1');
  if (first.type === EV.EV_NO_ACTION && sig === SPEC_ID_SIGNATURE) return parseCryptoAgile(buf, r, first);
  if (first.type === EV.EV_NO_ACTION && !LEGACY_SPEC_ID_SIGNATURES.includes(sig) && first.data.length >= 16 && sig.startsWith('Spec ID Event')) {
    malformed(first.offset + 32, `first event is a Spec ID event of unknown version "${sig.replace(/[^\x20-\x7e]/g, '.')}"`);
  }
  // No "Spec ID Event03": a TCG 1.2 SHA-1 log, whose first event must still look like one.
  if (!first.typeName.startsWith('EV_')) malformed(4, `first event has type ${first.typeName}, neither a Spec ID event nor an event type of the PC Client spec`);
  const specId = first.type === EV.EV_NO_ACTION && LEGACY_SPEC_ID_SIGNATURES.includes(sig) ? parseLegacySpecIdEvent(first.data, first.offset + 32) : undefined;
  const events: LogEvent[] = [first];
  const trailingPadding = readRecords(buf, r, () => legacyEvent(r, events.length), events);
  return { format: 'tcg1.2-sha1', ...(specId && { specId }), banks: [SHA1_BANK], events, trailingPadding };
}

/** Reads records until the end or trailing zero/0xFF padding; returns the padding length. */
function readRecords(buf: Buffer, r: ByteReader, next: () => LogEvent, events: LogEvent[]): number {
  while (r.remaining > 0) {
    const rest = buf.subarray(r.pos);
    if (isPadding(rest)) return rest.length;
    events.push(next());
  }
  return 0;
}

function parseCryptoAgile(buf: Buffer, r: ByteReader, first: LogEvent): EventLog {
  const specId = parseSpecIdEvent(first.data, first.offset + 32);
  const events: LogEvent[] = [first];
  const byId = new Map(specId.algorithms.map((a) => [a.algId, a]));
  const next = (): LogEvent => {
    const index = events.length;
    const offset = r.offset;
    const what = (field: string): string => `event ${index} (${field})`;
    const pcr = r.u32(what('pcrIndex'));
    const type = r.u32(what('eventType'));
    const typeName = eventTypeName(type);
    const extended = type !== EV.EV_NO_ACTION;
    if (extended && pcr > MAX_PCR) malformed(offset, `event ${index} (${typeName}) extends PCR ${pcr}, beyond PCR ${MAX_PCR}`);
    const count = r.u32(what('digest count'));
    // Every measured event carries a digest for each bank; EV_NO_ACTION may carry fewer.
    if (count > specId.algorithms.length || (extended && count !== specId.algorithms.length)) {
      malformed(offset + 8, `event ${index} (${typeName}) carries ${count} digests but the Spec ID event lists ${specId.algorithms.length} banks`);
    }
    const digests: EventDigest[] = [];
    for (let i = 0; i < count; i++) {
      const at = r.offset;
      const id = r.u16(what('digest algorithm'));
      const a = byId.get(id);
      if (!a) malformed(at, `event ${index} (${typeName}) has a ${algName(id)} digest, an algorithm the Spec ID event does not list`);
      if (digests.some((d) => d.algId === id)) malformed(at, `event ${index} (${typeName}) has two ${a.alg} digests`);
      digests.push({ algId: id, alg: a.alg, digest: r.bytes(a.digestSize, what(`${a.alg} digest`)) });
    }
    const data = eventData(r, index, typeName, offset);
    return { index, offset, pcr, type, typeName, digests, data };
  };
  const trailingPadding = readRecords(buf, r, next, events);
  return { format: 'crypto-agile', specId, banks: specId.algorithms, events, trailingPadding };
}
