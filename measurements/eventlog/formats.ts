/**
 * Recognizes well-formed logs of formats `parseEventLog` does not replay, so they are refused
 * with EVENTLOG_FORMAT_UNSUPPORTED and their name instead of being called malformed:
 * - TCG Canonical Event Log in TLV form (type u8, length u32 big-endian; the first record is
 *   `recnum`, then a PCR (1) or RTMR (108, go-tpm-tools' CCMR) index);
 * - JSON (CEL-JSON, e.g. systemd's /run/log/systemd/tpm2-measure.log, which is JSON-SEQ:
 *   records start with 0x1E): `eventlog replay --userspace-log` takes it next to a firmware log;
 * - the kernel's IMA log (binary_runtime_measurements: PCR, SHA-1 template hash, template name).
 */
import { fail } from '../../lib/errors.js';

export type UnsupportedFormat = 'cel-tlv' | 'cel-json' | 'ima';

const CEL_RECNUM = 0;
const CEL_PCR = 1;
const CEL_CCMR = 108;

function isCelTlv(b: Buffer): boolean {
  if (b.length < 19 || b[0] !== CEL_RECNUM || b.readUInt32BE(1) !== 8) return false;
  const index = b[13];
  return (index === CEL_PCR || index === CEL_CCMR) && b.readUInt32BE(14) === 1;
}

/** The first record parses as a JSON object or array (JSON-SEQ records start with RS, 0x1E). */
function isJson(b: Buffer): boolean {
  // Cheap first: a firmware log starts with a zero PCR index, JSON with RS, '{' or '['.
  const first = b.find((x) => x !== 0x20 && x !== 0x09 && x !== 0x0a && x !== 0x0d && x !== 0x1e);
  if (first !== 0x7b && first !== 0x5b) return false;
  const text = b.subarray(0, 1 << 20).toString('utf8').replace(/^[\s\x1e]+/, '');
  if (!text.startsWith('{') && !text.startsWith('[')) return false;
  const end = text.search(/[\x1e\n]/);
  try {
    const v: unknown = JSON.parse(end < 0 ? text : text.slice(0, end));
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
}

function isIma(b: Buffer): boolean {
  if (b.length < 32) return false;
  const nameLength = b.readUInt32LE(24);
  if (nameLength < 3 || nameLength > 255 || 28 + nameLength > b.length) return false;
  return /^ima[a-z0-9_-]*$/.test(b.subarray(28, 28 + nameLength).toString('latin1'));
}

export function unsupportedFormat(b: Buffer): UnsupportedFormat | undefined {
  if (isCelTlv(b)) return 'cel-tlv';
  if (isJson(b)) return 'cel-json';
  if (isIma(b)) return 'ima';
  return undefined;
}

const WHAT: Record<UnsupportedFormat, string> = {
  'cel-tlv': 'a TCG Canonical Event Log in TLV form (CEL-TLV)',
  'cel-json': 'JSON (a CEL-JSON log such as /run/log/systemd/tpm2-measure.log: pass it with --userspace-log next to the firmware log)',
  ima: "the kernel's IMA measurement log (binary_runtime_measurements)",
};

/** Throws EVENTLOG_FORMAT_UNSUPPORTED when the bytes are a log of a format we recognize but do not replay. */
export function refuseUnsupportedFormat(b: Buffer): void {
  const f = unsupportedFormat(b);
  if (f) fail('EVENTLOG_FORMAT_UNSUPPORTED', `the file is ${WHAT[f]}, not a TCG firmware event log (format "${f}")`);
}
