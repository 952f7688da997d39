/**
 * Parser for the TCG crypto-agile event log (TCG PC Client Platform Firmware Profile,
 * section 10.2): one legacy TCG_PCR_EVENT carrying TCG_EfiSpecIdEvent ("Spec ID Event03"),
 * then TCG_PCR_EVENT2 records, all little-endian. The Spec ID event's algorithm list is the
 * only source of digest sizes, so banks we cannot hash (SM3, SHA-3) still parse.
 */
import { fail } from '../../lib/errors.js';
import { DIGEST_SIZE } from '../../lib/bytes.js';
import { ByteReader } from './reader.js';
import { EV, REPLAYABLE, algName, eventTypeName } from './types.js';

export interface SpecIdAlgorithm {
  algId: number;
  /** `sha256`, or `alg_0x....` for an algorithm this project does not know. */
  alg: string;
  digestSize: number;
}

export interface SpecIdEvent {
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

export interface EventLog {
  specId: SpecIdEvent;
  events: LogEvent[];
  /** Zero (or 0xFF) bytes after the last event, as firmware or securityfs may leave them. */
  trailingPadding: number;
}

export const SPEC_ID_SIGNATURE = 'Spec ID Event03\0';
const LEGACY_DIGEST_SIZE = 20;
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
  if (sig !== SPEC_ID_SIGNATURE) {
    const seen = sig.replace(/[^\x20-\x7e]/g, '.');
    const hint = sig.startsWith('Spec ID Event02') || sig.startsWith('Spec ID Event00') ? ' (a SHA-1-only log: not supported)' : '';
    malformed(base, `first event is not "Spec ID Event03" but "${seen}"${hint}`);
  }
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
    const known = REPLAYABLE.get(algId);
    if (known && DIGEST_SIZE[known] !== digestSize) malformed(at, `Spec ID event gives ${alg} a digest size of ${digestSize}`);
    if (digestSize === 0 || digestSize > 64) malformed(at, `Spec ID event gives ${alg} an implausible digest size of ${digestSize}`);
    algorithms.push({ algId, alg, digestSize });
  }
  // vendorInfoSize is absent in a few early firmware logs: tolerate its absence.
  let vendorInfo: Buffer = Buffer.alloc(0);
  if (r.remaining > 0) vendorInfo = r.bytes(r.u8('vendorInfoSize'), 'vendorInfo');
  return { platformClass, specVersion: { major, minor, errata }, uintnSize, algorithms, vendorInfo };
}

function isPadding(b: Buffer): boolean {
  const first = b[0];
  if (first !== 0x00 && first !== 0xff) return false;
  for (const x of b) if (x !== first) return false;
  return true;
}

/** Parses a whole crypto-agile event log; throws EVENTLOG_TRUNCATED / EVENTLOG_MALFORMED. */
export function parseEventLog(bytes: Uint8Array): EventLog {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) fail('EVENTLOG_TRUNCATED', 'event log is empty');
  const r = new ByteReader(buf, truncated);

  // The first record is a legacy TCG_PCR_EVENT (SHA-1 digest field) carrying the Spec ID event.
  const pcr0 = r.u32('the first event (pcrIndex)');
  const type0 = r.u32('the first event (eventType)');
  const digest0 = r.bytes(LEGACY_DIGEST_SIZE, 'the first event (digest)');
  const size0 = r.u32('the first event (eventDataSize)');
  if (type0 !== EV.EV_NO_ACTION) malformed(4, `first event has type ${eventTypeName(type0)}, not EV_NO_ACTION: no Spec ID event`);
  const dataAt = r.offset;
  const data0 = r.bytes(size0, 'the Spec ID event data');
  const specId = parseSpecIdEvent(data0, dataAt);
  const events: LogEvent[] = [
    {
      index: 0,
      offset: 0,
      pcr: pcr0,
      type: type0,
      typeName: eventTypeName(type0),
      digests: [{ algId: 0x0004, alg: 'sha1', digest: digest0 }],
      data: data0,
    },
  ];
  const byId = new Map(specId.algorithms.map((a) => [a.algId, a]));

  let trailingPadding = 0;
  while (r.remaining > 0) {
    const rest = buf.subarray(r.pos);
    if (isPadding(rest)) {
      trailingPadding = rest.length;
      break;
    }
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
    const sizeAt = r.offset;
    const size = r.u32(what('eventSize'));
    if (size > r.remaining) {
      fail(
        'EVENTLOG_TRUNCATED',
        `event ${index} (${typeName}) at offset ${offset} (${hex(offset)}) declares ${size} bytes of event data at offset ${sizeAt} but only ${r.remaining} remain`,
      );
    }
    const data = r.bytes(size, what('event data'));
    events.push({ index, offset, pcr, type, typeName, digests, data });
  }
  return { specId, events, trailingPadding };
}
