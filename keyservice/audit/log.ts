import { open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { hash, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';

/**
 * Append-only, hash-chained audit log: one JSON line per decision. Each record carries
 * `prev` = hex SHA-256 of the previous line's exact bytes (64 zeros for the first), so an
 * edited, dropped or reordered record breaks the chain. The chain alone cannot see the last
 * line edited or the tail cut off, so the writer also keeps a head file (`<log>.head`: count
 * and hash of the last line) that `verifyAuditLog` checks when it is given.
 */

export const GENESIS = '0'.repeat(64);

export interface AuditDecision {
  /** `release` (secrets sent), `refuse` (a stage failed), `challenge` (round 1 answered), `lock-confirmed` (PCR 15 lock proven). */
  decision: 'release' | 'refuse' | 'challenge' | 'start' | 'measurements-reload' | 'lock-confirmed' | 'disk-rebind';
  [field: string]: unknown;
}

export interface AuditRecord extends AuditDecision {
  seq: number;
  time: string;
  prev: string;
}

export interface AuditHead {
  count: number;
  last: string;
}

export function headPath(logPath: string): string {
  return logPath + '.head';
}

function lineHash(line: string): string {
  return toHex(hash('sha256', Buffer.from(line, 'utf8')));
}

interface Pending {
  d: AuditDecision;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
}

export class AuditLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    private head: AuditHead,
    private readonly now: () => Date,
  ) {}

  /** Opens (or creates) the log; refuses to append to a log whose chain is already broken. */
  static async open(path: string, now: () => Date = () => new Date()): Promise<AuditLog> {
    let head: AuditHead = { count: 0, last: GENESIS };
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text) head = verifyAuditText(text, await readHead(headPath(path)));
    const fh = await open(path, 'a', 0o600);
    return new AuditLog(path, fh, head, now);
  }

  /**
   * Appends one record; resolves once it (and the head) is fsynced. Records that arrive while
   * a write is in flight are chained and written together with one fsync (group commit), so
   * durability per decision does not cap throughput at one disk flush per request.
   */
  append(d: AuditDecision): Promise<AuditRecord> {
    return new Promise((resolve, reject) => {
      this.pending.push({ d, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      let head = this.head;
      const lines: string[] = [];
      const written: { p: Pending; rec: AuditRecord }[] = [];
      for (const p of batch) {
        // A record that cannot be serialized fails its own append, never the loop (an
        // escaped throw here rejected a promise nothing awaited and ended the process).
        try {
          const rec: AuditRecord = { seq: head.count, time: this.now().toISOString(), prev: head.last, ...p.d };
          const line = JSON.stringify(rec);
          lines.push(line + '\n');
          written.push({ p, rec });
          head = { count: head.count + 1, last: lineHash(line) };
        } catch (e) {
          p.reject(new SextantError({ code: 'INTERNAL', message: 'audit record cannot be serialized', cause: e }));
        }
      }
      if (!written.length) continue;
      try {
        await this.fh.write(lines.join(''));
        await this.fh.datasync();
        this.head = head;
        const tmp = headPath(this.path) + '.tmp';
        await writeFile(tmp, JSON.stringify(this.head) + '\n', { mode: 0o600, flush: true });
        await rename(tmp, headPath(this.path));
        written.forEach(({ p, rec }) => p.resolve(rec));
      } catch (e) {
        written.forEach(({ p }) => p.reject(e));
      }
    }
    this.flushing = undefined;
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.fh.close();
  }
}

async function readHead(path: string): Promise<AuditHead | undefined> {
  let t: string;
  try {
    t = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const h = JSON.parse(t) as AuditHead;
    if (Number.isInteger(h.count) && typeof h.last === 'string') return h;
  } catch {
    /* fall through */
  }
  throw new SextantError({ code: 'AUDIT_LOG_BROKEN', message: `${path}: head file is not {count, last}` });
}

function broken(line: number, why: string): never {
  throw new SextantError({ code: 'AUDIT_LOG_BROKEN', message: `audit log line ${line}: ${why}` });
}

/** Checks the whole chain (and the head when given); returns the head it computed. */
export function verifyAuditText(text: string, head?: AuditHead): AuditHead {
  if (text !== '' && !text.endsWith('\n')) broken(text.split('\n').length, 'truncated (no final newline)');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  let prev = GENESIS;
  lines.forEach((line, i) => {
    let rec: Partial<AuditRecord>;
    try {
      rec = JSON.parse(line) as Partial<AuditRecord>;
    } catch {
      broken(i + 1, 'not JSON');
    }
    if (rec.seq !== i) broken(i + 1, `sequence number ${String(rec.seq)}, expected ${i} (dropped or reordered record)`);
    if (rec.prev !== prev) broken(i + 1, 'previous-record hash does not match (edited, dropped or reordered record)');
    prev = lineHash(line);
  });
  const computed = { count: lines.length, last: prev };
  if (head && (head.count !== computed.count || head.last !== computed.last)) {
    throw new SextantError({
      code: 'AUDIT_LOG_BROKEN',
      message: `audit log ends at record ${computed.count} but its head file says ${head.count} (last record edited or tail cut off)`,
    });
  }
  return computed;
}

/** `sextant keyservice audit verify FILE`: the chain, plus FILE.head when present. */
export async function verifyAuditLog(path: string, opts: { headFile?: string } = {}): Promise<AuditHead & { headChecked: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${path}`, cause });
  }
  const head = await readHead(opts.headFile ?? headPath(path));
  return { ...verifyAuditText(text, head), headChecked: head !== undefined };
}
