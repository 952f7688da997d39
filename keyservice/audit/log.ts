import { constants } from 'node:fs';
import { open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import { encodeBatch, GroupCommitLog, type Pending } from './group-commit.js';
import { DEFAULT_LIMITS, sha256Hex, type AuditHead, type AuditLimits } from './record.js';
import { headPath, readHead, scanAuditLog } from './scan.js';

export { GENESIS, pcrsEvidence, type AuditDecision, type AuditHead, type AuditRecord } from './record.js';
export { headPath, readAuditRecords, verifyAuditBytes, verifyAuditLog } from './scan.js';

/**
 * Append-only, hash-chained audit log, crash-safe like a write-ahead log
 * (docs/audit-log.md has the invariant):
 *
 * - `append()` resolves only when the record (and everything before it) is fdatasynced: an
 *   acknowledged record survives kill -9 and power loss. Callers act (send a secret) only
 *   after that.
 * - Records arriving while a write is in flight are chained and written together with one
 *   fdatasync (group commit).
 * - After each durable batch the head file (`<log>.head`) is replaced by a checkpoint of it:
 *   a lower bound, never ahead of the durable records.
 * - A failed write or fsync (ENOSPC, EIO) rejects the batch with AUDIT_UNAVAILABLE, cuts the
 *   file back to its last durable byte and leaves the process running; the next append tries
 *   again, so the log recovers by itself when space returns.
 */

export interface AuditLogOptions {
  now?: () => Date;
  limits?: Partial<AuditLimits>;
  /** How often deferred records are retried while the log is unavailable. */
  retryMs?: number;
}

export class AuditLog extends GroupCommitLog {
  /** A failed write may have left bytes after `size`: cut them before the next write. */
  private dirty = false;
  private readonly limits: AuditLimits;
  private readonly now: () => Date;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private head: AuditHead,
    /** Bytes of durable, complete records: where the next batch is written. */
    private size: number,
    private readonly evidence: Set<string>,
    o: AuditLogOptions,
  ) {
    super(o.retryMs);
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.now = o.now ?? (() => new Date());
  }

  /**
   * Opens (or creates) the log. Refuses (AUDIT_LOG_BROKEN) a log whose acknowledged prefix was
   * edited, reordered or cut; a torn final record is cut off, and the cut is the first record
   * written (how many bytes, their SHA-256).
   */
  static async open(file: string, o: AuditLogOptions | (() => Date) = {}): Promise<AuditLog> {
    const opts = typeof o === 'function' ? { now: o } : o;
    let bytes = Buffer.alloc(0);
    let created = false;
    try {
      bytes = await readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      created = true;
    }
    const scan = scanAuditLog(bytes, await readHead(headPath(file)));
    const fh = await open(file, constants.O_RDWR | constants.O_CREAT, 0o600);
    if (created) await syncDir(path.dirname(file));
    const log = new AuditLog(file, fh, { count: scan.count, last: scan.last }, scan.goodBytes, scan.evidence, opts);
    if (scan.torn) {
      // Written at the torn record's offset: the cut and its record are one write, so no state
      // on disk has the bytes gone without the record saying so.
      log.dirty = true;
      void log.append({ decision: 'tail-cut', offset: scan.goodBytes, bytes: scan.torn.length, sha256: sha256Hex(scan.torn), reason: 'torn final record (a write that never completed) cut off on open' }, { deferred: true });
      await log.settled();
    }
    return log;
  }

  /** One batch: chained after the head, written and fdatasynced, then the head file. */
  protected async commit(batch: Pending[]): Promise<void> {
    const e = encodeBatch(batch, this.head, this.now().toISOString(), (sha) => this.evidence.has(sha), this.limits);
    if (!e.written.length) return;
    const buf = Buffer.from(e.lines.join(''), 'utf8');
    await this.writeDurably(buf);
    this.size += buf.length;
    this.head = e.head;
    e.newEvidence.forEach((s) => this.evidence.add(s));
    for (const { p, rec } of e.written) p.resolve(rec);
    await this.checkpoint();
  }

  protected unavailable(cause: unknown): SextantError {
    return unavailable(cause);
  }

  protected release(): Promise<void> {
    return this.fh.close();
  }

  /**
   * Writes `buf` at the end of the durable records and fdatasyncs. Bytes a failed write left
   * behind are overwritten first and cut after (so a torn record and the record of its cut
   * are one write); on failure the file is cut back to its durable end when possible.
   */
  private async writeDurably(buf: Buffer): Promise<void> {
    const leftover = this.dirty;
    this.dirty = true;
    try {
      // A write may be short (a nearly full disk takes part of it): loop until all is written.
      for (let off = 0; off < buf.length; ) {
        const { bytesWritten } = await this.fh.write(buf, off, buf.length - off, this.size + off);
        if (bytesWritten <= 0) throw unavailable({ code: 'EIO', message: 'write wrote nothing' });
        off += bytesWritten;
      }
      if (leftover) await this.fh.truncate(this.size + buf.length);
      await this.fh.datasync();
      this.dirty = false;
    } catch (e) {
      try {
        await this.fh.truncate(this.size);
        await this.fh.datasync();
        this.dirty = false;
      } catch {
        /* still dirty: cut on the next write */
      }
      throw e;
    }
  }

  /** The head file after a durable batch; a failure only leaves the lower bound lower. */
  private async checkpoint(): Promise<void> {
    const tmp = headPath(this.path) + '.tmp';
    try {
      await writeFile(tmp, JSON.stringify(this.head) + '\n', { mode: 0o600, flush: true });
      await rename(tmp, headPath(this.path));
    } catch {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /** Records acknowledged so far and the hash of the last one. */
  get durableHead(): AuditHead {
    return { ...this.head };
  }
}

function unavailable(cause: unknown): SextantError {
  const code = (cause as NodeJS.ErrnoException)?.code ?? 'error';
  return new SextantError({
    code: 'AUDIT_UNAVAILABLE',
    message: `the audit log cannot be written (${code}): the decision is not recorded and nothing is released; retry later`,
    cause,
  });
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
