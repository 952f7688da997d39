import { readFile } from 'node:fs/promises';
import { SextantError } from '../../lib/errors.js';
import { GENESIS, sha256Hex, type AuditHead, type AuditRecord } from './record.js';

/**
 * Reading an audit log: the one check that both the writer (on open) and
 * `sextant keyservice audit verify` run. See docs/audit-log.md for the invariant:
 *
 * - every complete line (ending in a newline) must chain: `seq` = its index, `prev` = the hash
 *   of the line before, evidence records hash to their `sha256`, every `evidence` reference
 *   names an evidence record earlier in the chain;
 * - the head file is a lower bound: the log must hold at least `head.count` records and
 *   record `head.count - 1` must hash to `head.last`; complete records beyond it are valid;
 * - bytes after the last newline are a torn final record (a write that never completed, so
 *   never acknowledged): reported, and cut off by the writer with a `tail-cut` record.
 */

export interface AuditScan extends AuditHead {
  /** Byte length of the complete records (where the next record goes). */
  goodBytes: number;
  /** The partial final line, if any. */
  torn?: Buffer;
  /** Records after the head file's count (written, fsynced or not, before the head caught up). */
  beyondHead: number;
  headChecked: boolean;
  /** SHA-256 of every evidence blob in the log. */
  evidence: Set<string>;
}

export function headPath(logPath: string): string {
  return logPath + '.head';
}

function broken(message: string): never {
  throw new SextantError({ code: 'AUDIT_LOG_BROKEN', message });
}

export async function readHead(path: string): Promise<AuditHead | undefined> {
  let t: string;
  try {
    t = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseAuditHead(t, `${path}: head file`);
}

/**
 * A head as stored (the file log's FILE.head, the etcd chain's audit/head): `{count, last}`
 * with a record count >= 0 and a record hash; else AUDIT_LOG_BROKEN naming `where`. The one
 * check of a head for the writer (file and etcd) and for `audit verify` / `audit export`.
 */
export function parseAuditHead(text: string, where: string): AuditHead {
  try {
    const h = JSON.parse(text) as AuditHead;
    if (h !== null && typeof h === 'object' && Number.isSafeInteger(h.count) && h.count >= 0 && typeof h.last === 'string') return { count: h.count, last: h.last };
  } catch {
    /* fall through */
  }
  return broken(`${where} is not {count, last}`);
}

const NL = 0x0a;

/** Checks a whole log (and its head when given); returns where it ends and what follows. */
export function scanAuditLog(bytes: Buffer, head?: AuditHead, onRecord?: (r: AuditRecord) => void): AuditScan {
  const end = bytes.lastIndexOf(NL) + 1;
  const evidence = new Set<string>();
  let prev = GENESIS;
  let count = 0;
  for (let start = 0; start < end; ) {
    const nl = bytes.indexOf(NL, start);
    const line = bytes.subarray(start, nl);
    const at = `audit log line ${count + 1}`;
    let rec: AuditRecord;
    try {
      rec = JSON.parse(line.toString('utf8')) as AuditRecord;
    } catch {
      return broken(`${at}: not JSON`);
    }
    if (rec === null || typeof rec !== 'object') broken(`${at}: not a record`);
    if (rec.seq !== count) broken(`${at}: sequence number ${String(rec.seq)}, expected ${count} (dropped or reordered record)`);
    if (rec.prev !== prev) broken(`${at}: previous-record hash does not match (edited, dropped or reordered record)`);
    if (rec.decision === 'evidence') {
      if (typeof rec.data !== 'string' || sha256Hex(Buffer.from(rec.data, 'base64')) !== rec.sha256) broken(`${at}: evidence does not match its SHA-256`);
      evidence.add(rec.sha256);
    }
    for (const [name, sha] of Object.entries(rec.evidence ?? {})) {
      if (!evidence.has(sha)) broken(`${at}: references ${name} evidence ${String(sha)} that is not earlier in the log`);
    }
    onRecord?.(rec);
    prev = sha256Hex(line);
    if (head && count + 1 === head.count && prev !== head.last) broken(`${at}: does not hash to the head file's last record (record edited)`);
    count++;
    start = nl + 1;
  }
  if (head && head.count > count) broken(`audit log ends at record ${count} but its head file says at least ${head.count} (tail cut off)`);
  if (head && head.count === 0 && head.last !== GENESIS) broken('head file of an empty log names a record');
  return {
    count,
    last: prev,
    goodBytes: end,
    torn: end < bytes.length ? bytes.subarray(end) : undefined,
    beyondHead: head ? count - head.count : 0,
    headChecked: head !== undefined,
    evidence,
  };
}

async function readLog(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${path}`, cause });
  }
}

export interface AuditVerifyResult extends AuditHead {
  headChecked: boolean;
  beyondHead: number;
  /** Bytes of a torn final record (the writer cuts them off on its next open). */
  tornBytes: number;
  tailCuts: number;
  evidenceBlobs: number;
}

/** `sextant keyservice audit verify FILE`: the chain, plus FILE.head when present. */
export async function verifyAuditLog(path: string, opts: { headFile?: string } = {}): Promise<AuditVerifyResult> {
  return verifyAuditBytes(await readLog(path), await readHead(opts.headFile ?? headPath(path)));
}

/** The same check over a log's bytes (a file's, or the lines the etcd store holds). */
export function verifyAuditBytes(bytes: Buffer, head: AuditHead | undefined): AuditVerifyResult {
  let tailCuts = 0;
  const s = scanAuditLog(bytes, head, (r) => void (r.decision === 'tail-cut' && tailCuts++));
  return { count: s.count, last: s.last, headChecked: s.headChecked, beyondHead: s.beyondHead, tornBytes: s.torn?.length ?? 0, tailCuts, evidenceBlobs: s.evidence.size };
}

/**
 * The complete records of a log (verified) with their evidence resolved: `pcrs` and
 * `eventLog` (base64) as earlier records carried them inline, for readers and tests.
 */
export async function readAuditRecords(path: string): Promise<(AuditRecord & { pcrs?: Record<string, string>; eventLog?: string })[]> {
  const blobs = new Map<string, string>();
  const out: (AuditRecord & { pcrs?: Record<string, string>; eventLog?: string })[] = [];
  scanAuditLog(await readLog(path), undefined, (r) => {
    if (r.decision === 'evidence') blobs.set(String(r.sha256), String(r.data));
    const e = r.evidence ?? {};
    out.push({
      ...r,
      ...(e.pcrs ? { pcrs: JSON.parse(Buffer.from(blobs.get(e.pcrs)!, 'base64').toString('utf8')) as Record<string, string> } : {}),
      ...(e.eventLog ? { eventLog: blobs.get(e.eventLog) } : {}),
    });
  });
  return out;
}
