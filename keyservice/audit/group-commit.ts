import { SextantError, isSextantError } from '../../lib/errors.js';
import { encodeEntry, type AuditDecision, type AuditHead, type AuditLimits, type AuditRecord } from './record.js';

/**
 * The append queue both audit logs share (the state directory's file, audit/log.ts, and the
 * replicas' chain in etcd, store/etcd/audit.ts): records arriving while a write is in flight
 * are chained and written together (group commit); `append` resolves only once its record is
 * durable. When the medium fails (full disk, no etcd quorum) everyone waiting is refused at
 * once (nothing may be released on an unwritten record) and only `deferred` records (the
 * log's own: `start`, `tail-cut`) stay queued, retried by a timer or the next append.
 */

export interface Pending {
  d: AuditDecision;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
  /** Kept queued across failures instead of rejected (the log's own records, `start`). */
  deferred: boolean;
}

export interface EncodedBatch {
  /** Lines with their final newline, in chain order (evidence records before their decision). */
  lines: string[];
  /** Each line's record, for its key. */
  records: AuditRecord[];
  written: { p: Pending; rec: AuditRecord }[];
  head: AuditHead;
  newEvidence: Set<string>;
}

/** Chains a batch after `head`; a record that cannot be encoded (a release over the cap) is refused alone. */
export function encodeBatch(batch: Pending[], head: AuditHead, time: string, known: (sha: string) => boolean, limits: AuditLimits): EncodedBatch {
  const out: EncodedBatch = { lines: [], records: [], written: [], head, newEvidence: new Set() };
  for (const p of batch) {
    try {
      const e = encodeEntry(p.d, out.head, time, (sha) => known(sha) || out.newEvidence.has(sha), limits);
      out.lines.push(...e.lines);
      out.records.push(...e.records);
      e.newEvidence.forEach((s) => out.newEvidence.add(s));
      out.head = e.head;
      out.written.push({ p, rec: e.records.at(-1)! });
    } catch (err) {
      p.reject(err);
    }
  }
  return out;
}

export abstract class GroupCommitLog {
  protected pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  protected closed = false;

  constructor(private readonly retryMs = 1000) {}

  /** Writes the batch durably and settles each of its records; throws when the medium failed. */
  protected abstract commit(batch: Pending[]): Promise<void>;
  /** The refusal for everyone waiting when `commit` threw something that is not a SextantError. */
  protected abstract unavailable(cause: unknown): SextantError;
  /** Releases the medium on close. */
  protected abstract release(): Promise<void>;

  /** The next batch (default: everything waiting). */
  protected takeBatch(): Pending[] {
    return this.pending.splice(0);
  }

  /**
   * Appends one record; resolves once it is durable. Rejects with AUDIT_UNAVAILABLE (or the
   * store's STORE_UNAVAILABLE) when it cannot be written, AUDIT_RECORD_TOO_LARGE for a release
   * over the per-record cap. `deferred` records are instead retried until written.
   */
  append(d: AuditDecision, opts: { deferred?: boolean } = {}): Promise<AuditRecord> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new SextantError({ code: 'AUDIT_UNAVAILABLE', message: 'audit log is closed' }));
      this.pending.push({ d, resolve, reject, deferred: opts.deferred ?? false });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length && !this.closed) {
      const batch = this.takeBatch();
      try {
        await this.commit(batch);
      } catch (cause) {
        const e = isSextantError(cause) ? cause : this.unavailable(cause);
        // Fail closed now for everyone waiting; keep only the deferred records.
        const all = [...batch, ...this.pending];
        for (const p of all) if (!p.deferred) p.reject(e);
        this.pending = all.filter((p) => p.deferred);
        if (this.pending.length) this.scheduleRetry();
        break;
      }
    }
    this.flushing = undefined;
  }

  private scheduleRetry(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.pending.length) this.flushing ??= this.flushLoop();
    }, this.retryMs);
  }

  /** Resolves when the writes in flight are done (written or failed). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    await this.settled();
    this.closed = true;
    clearTimeout(this.retry);
    for (const p of this.pending.splice(0)) p.reject(new SextantError({ code: 'AUDIT_UNAVAILABLE', message: 'audit log closed before the record was written' }));
    await this.release();
  }
}
