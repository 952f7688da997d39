/**
 * systemd's userspace measurement log, /run/log/systemd/tpm2-measure.log: one CEL-JSON-like
 * record per PCR extension systemd makes after boot (systemd-pcrextend: boot phases into PCR
 * 11, machine-id and file systems into 15; systemd-cryptsetup: volume keys into 15; NvPCR
 * initializations into 9). JSON-SEQ (RFC 7464): each record starts with RS (0x1E), e.g.
 *   {"pcr":11,"digests":[{"hashAlg":"sha256","digest":"<hex>"}],"content_type":"systemd",
 *    "content":{"string":"enter-initrd","eventType":"phase"}}
 * (systemd's src/pcrlock reads it the same way). Replayed after the firmware log, record by
 * record, and each record is checked against its content: systemd measures H(string) for every
 * event type but the ones keyed by a secret (a volume key's HMAC, a credential's HMAC).
 */
import { fail } from '../../lib/errors.js';
import { bankHash } from './banks.js';
import type { EventLog } from './parse.js';
import { replayState, stateToBanks, type PcrState, type ReplayReport } from './replay.js';
import { algId as algIdOf, BANKS_BY_ID } from './types.js';

export interface UserspaceDigest {
  alg: string;
  digest: Buffer;
}

export interface UserspaceRecord {
  /** Position in the file, from 0. */
  index: number;
  recnum?: number;
  pcr: number;
  digests: UserspaceDigest[];
  contentType?: string;
  eventType?: string;
  /** What was measured (for the secret-keyed types: what the HMAC covered). */
  string?: string;
}

/** Event types whose digest is an HMAC keyed by a secret, so the content cannot re-derive it. */
const KEYED_EVENT_TYPES = new Set(['volume-key', 'credential']);
const MAX_RECORDS = 100_000;

function bad(index: number, message: string): never {
  fail('EVENTLOG_MALFORMED', `userspace log record ${index}: ${message}`);
}

function recordOf(v: unknown, index: number): UserspaceRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(index, 'is not a JSON object');
  const o = v as Record<string, unknown>;
  if (!Number.isInteger(o.pcr) || (o.pcr as number) < 0 || (o.pcr as number) > 23) bad(index, '"pcr" must be an integer 0-23');
  if (!Array.isArray(o.digests) || o.digests.length === 0) bad(index, '"digests" must be a non-empty array');
  const digests = o.digests.map((d: unknown, i): UserspaceDigest => {
    const x = d as { hashAlg?: unknown; digest?: unknown } | null;
    if (typeof x?.hashAlg !== 'string' || typeof x.digest !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(x.digest)) {
      bad(index, `digests[${i}] must have "hashAlg" and a hex "digest"`);
    }
    const id = algIdOf(x.hashAlg);
    const size = id === undefined ? undefined : BANKS_BY_ID.get(id)!.digestSize;
    if (size !== undefined && x.digest.length !== size * 2) bad(index, `digests[${i}] is not a ${x.hashAlg} digest (${x.digest.length / 2} bytes)`);
    return { alg: x.hashAlg, digest: Buffer.from(x.digest, 'hex') };
  });
  const content = o.content as { string?: unknown; eventType?: unknown } | undefined;
  if (content !== undefined && (typeof content !== 'object' || content === null)) bad(index, '"content" must be an object');
  if (o.recnum !== undefined && !Number.isInteger(o.recnum)) bad(index, '"recnum" must be an integer');
  return {
    index,
    ...(o.recnum !== undefined && { recnum: o.recnum as number }),
    pcr: o.pcr as number,
    digests,
    ...(typeof o.content_type === 'string' && { contentType: o.content_type }),
    ...(typeof content?.eventType === 'string' && { eventType: content.eventType }),
    ...(typeof content?.string === 'string' && { string: content.string }),
  };
}

/** Parses a JSON-SEQ (or newline-delimited, or array) userspace log; EVENTLOG_MALFORMED names the record. */
export function parseUserspaceLog(bytes: Uint8Array): UserspaceRecord[] {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let all: unknown;
    try {
      all = JSON.parse(trimmed);
    } catch (e) {
      fail('EVENTLOG_MALFORMED', `userspace log is not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(all)) fail('EVENTLOG_MALFORMED', 'userspace log is not a JSON array of records');
    return all.map(recordOf);
  }
  const chunks = (text.includes('\x1e') ? text.split('\x1e') : text.split('\n')).map((c) => c.trim()).filter(Boolean);
  if (chunks.length > MAX_RECORDS) fail('EVENTLOG_MALFORMED', `userspace log has more than ${MAX_RECORDS} records`);
  return chunks.map((c, i) => {
    let v: unknown;
    try {
      v = JSON.parse(c);
    } catch (e) {
      bad(i, `is not JSON: ${(e as Error).message}`);
    }
    return recordOf(v, i);
  });
}

export type RecordStatus = 'verified' | 'mismatch' | 'unverifiable';

export interface RecordCheck {
  index: number;
  pcr: number;
  eventType?: string;
  string?: string;
  status: RecordStatus;
  /** Why a record is a mismatch or unverifiable. */
  reason?: string;
}

/** Whether each digest is the hash of the record's string (systemd's rule for unkeyed event types). */
export function checkUserspaceRecord(r: UserspaceRecord): RecordCheck {
  const base = { index: r.index, pcr: r.pcr, ...(r.eventType && { eventType: r.eventType }), ...(r.string !== undefined && { string: r.string }) };
  if (r.string === undefined) return { ...base, status: 'unverifiable', reason: 'the record has no content string' };
  if (r.eventType && KEYED_EVENT_TYPES.has(r.eventType)) return { ...base, status: 'unverifiable', reason: `a ${r.eventType} digest is an HMAC keyed by a secret` };
  const data = Buffer.from(r.string, 'utf8');
  for (const d of r.digests) {
    const id = algIdOf(d.alg);
    const h = id === undefined ? undefined : bankHash(id);
    if (!h) continue;
    if (!h(data).equals(d.digest)) {
      // An event type systemd documents as H(string) that does not match is a record that lies.
      const known = r.eventType !== undefined && r.contentType === 'systemd';
      return { ...base, status: known ? 'mismatch' : 'unverifiable', reason: `the ${d.alg} digest is not the hash of ${JSON.stringify(r.string)}` };
    }
  }
  return { ...base, status: 'verified' };
}

/** Extends the records into the firmware replay's state, in order; every bank the state has must be in every record. */
export function extendUserspace(state: PcrState, records: readonly UserspaceRecord[]): RecordCheck[] {
  const checks: RecordCheck[] = [];
  for (const r of records) {
    for (const [alg, bank] of state) {
      const d = r.digests.find((x) => x.alg === alg);
      if (!d) bad(r.index, `has no ${alg} digest, but the firmware log's ${alg} bank is active (systemd measures every active bank)`);
      const old = bank.pcrs.get(r.pcr) ?? Buffer.alloc(bank.size);
      bank.pcrs.set(r.pcr, bank.hash(old, d.digest));
    }
    checks.push(checkUserspaceRecord(r));
  }
  return checks;
}

export interface CombinedReplay extends ReplayReport {
  /** One check per userspace record, in order. */
  userspace: RecordCheck[];
}

/** The firmware log replayed, then the userspace records on top: what the TPM holds after boot. */
export function replayWithUserspace(log: EventLog, records: readonly UserspaceRecord[]): CombinedReplay {
  const { state, notReplayed, pcr0 } = replayState(log);
  const userspace = extendUserspace(state, records);
  return { format: log.format, banks: stateToBanks(state), notReplayed, pcr0, userspace };
}
