import type { Namespace } from 'etcd3';
import { SextantError } from '../../../lib/errors.js';
import { encodeBatch, GroupCommitLog, type Pending } from '../../audit/group-commit.js';
import { DEFAULT_LIMITS, GENESIS, type AuditHead, type AuditLimits } from '../../audit/record.js';
import { parseAuditHead } from '../../audit/scan.js';
import type { AuditSink } from '../store.js';
import { guard } from './client.js';

/**
 * The audit log of all replicas as one hash chain in etcd, in the file log's record format
 * (audit/record.ts), so `audit verify` and an export check it the same way:
 *
 *   audit/head                  {count, last}: the number of records and the hash of the last line
 *   audit/rec/<seq, 12 digits>  the record's exact JSON line (without its newline)
 *
 * An append is one transaction: "head's mod revision is still the one this replica read ->
 * put the batch's records and the new head". etcd acknowledges it after a majority of
 * members fsynced it, so an acknowledged record survives a dead replica and a dead member. Two
 * replicas appending at once: one transaction wins, the other reads the new head, chains its
 * batch after it and tries again. Records arriving while a transaction is in flight go in the
 * next one together (group commit, audit/group-commit.ts, as in the file log).
 *
 * Evidence blobs are stored once per replica that first needs them: a replica only references
 * blobs it wrote itself or saw committed, which are earlier in the chain by construction.
 */

const MAX_BATCH_RECORDS = 48; // etcd's default --max-txn-ops is 128: records (+ evidence) + head
const MAX_BATCH_BYTES = 1024 * 1024; // etcd's default --max-request-bytes is 1.5 MiB
const MAX_CONFLICTS = 64;

export const recordKey = (seq: number): string => 'audit/rec/' + String(seq).padStart(12, '0');
export const HEAD_KEY = 'audit/head';

export class EtcdAuditLog extends GroupCommitLog implements AuditSink {
  private head: AuditHead = { count: 0, last: GENESIS };
  /** The head key's mod revision when this replica last read or wrote it ('0': absent). */
  private headRevision = '0';
  private readonly evidence = new Set<string>();
  private readonly limits: AuditLimits;

  constructor(
    private readonly ns: Namespace,
    private readonly o: { now?: () => Date; retryMs?: number; limits?: Partial<AuditLimits> } = {},
  ) {
    super(o.retryMs);
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
  }

  /** Reads the head before the first append (a fresh chain when etcd has none). */
  async open(): Promise<this> {
    await this.readHead();
    return this;
  }

  get durableHead(): AuditHead {
    return { ...this.head };
  }

  private async readHead(): Promise<void> {
    const r = await guard('read the audit head', () => this.ns.get(HEAD_KEY).exec());
    const kv = r.kvs[0];
    if (!kv) {
      this.head = { count: 0, last: GENESIS };
      this.headRevision = '0';
      return;
    }
    this.head = parseAuditHead(kv.value.toString('utf8'), 'etcd audit/head');
    this.headRevision = kv.mod_revision;
  }

  /** Up to MAX_BATCH_RECORDS, and (estimated from the evidence sizes) under etcd's request limit; at least one. */
  protected override takeBatch(): Pending[] {
    let n = 0;
    let bytes = 0;
    for (const p of this.pending) {
      const size = 16 * 1024 + Object.values(p.d.evidence ?? {}).reduce((a, b) => a + Math.ceil((b.length * 4) / 3), 0);
      if (n >= MAX_BATCH_RECORDS || (n > 0 && bytes + size > MAX_BATCH_BYTES)) break;
      bytes += size;
      n++;
    }
    return this.pending.splice(0, n);
  }

  /** Chains the batch after the head and commits it; on a lost race reads the head and chains again. */
  protected async commit(batch: Pending[]): Promise<void> {
    const time = (this.o.now?.() ?? new Date()).toISOString();
    for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
      const e = encodeBatch(batch, this.head, time, (sha) => this.evidence.has(sha), this.limits);
      if (!e.written.length) return;
      const ops = [...e.records.map((rec, i) => this.ns.put(recordKey(rec.seq)).value(e.lines[i].slice(0, -1))), this.ns.put(HEAD_KEY).value(JSON.stringify(e.head))];
      const r = await guard('append to the audit log', () =>
        this.ns
          .if(HEAD_KEY, 'Mod', '==', this.headRevision)
          .then(...ops)
          .commit(),
      );
      if (r.succeeded) {
        this.head = e.head;
        this.headRevision = r.header.revision;
        e.newEvidence.forEach((s) => this.evidence.add(s));
        for (const { p, rec } of e.written) p.resolve(rec);
        return;
      }
      // Another replica appended first: chain after its records.
      await this.readHead();
      batch = e.written.map((w) => w.p);
    }
    throw new SextantError({ code: 'AUDIT_UNAVAILABLE', message: `the audit head kept moving (${MAX_CONFLICTS} lost races): nothing released; retry` });
  }

  protected unavailable(cause: unknown): SextantError {
    return new SextantError({ code: 'STORE_UNAVAILABLE', message: 'the audit log in etcd cannot be written: the decision is not recorded and nothing is released; retry later', cause });
  }

  protected async release(): Promise<void> {}
}
