import { hash, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';

/**
 * The audit log's record format: one JSON line per record, `{seq, time, prev, decision, ...}`,
 * `prev` = hex SHA-256 of the previous line's exact bytes (64 zeros for the first). Evidence
 * (event logs, quoted PCRs) is stored once per distinct content as an `evidence` record in the
 * same chain, and decisions name it by SHA-256 in `evidence: {name: sha256}`.
 */

export const GENESIS = '0'.repeat(64);

export type DecisionKind =
  /** `release` (secrets sent), `refuse` (a stage failed), `challenge` (round 1 answered), `lock-confirmed` (PCR 15 lock proven). */
  | 'release'
  | 'refuse'
  | 'challenge'
  | 'start'
  | 'measurements-reload'
  /** Rolling upgrades (docs/rollout.md): a set loaded or refused at the admin socket (`forced: true` past anti-rollback), a set retired. */
  | 'measurements-load'
  | 'measurements-retire'
  | 'lock-confirmed'
  /** An admin moved a disk UUID's binding to another node (keyservice/binding/). */
  | 'disk-rebind'
  /** A blob other records reference by hash (written by the log itself). */
  | 'evidence'
  /** A torn final record cut off when the log was opened (written by the log itself). */
  | 'tail-cut';

export interface AuditDecision {
  decision: DecisionKind;
  /**
   * Evidence to keep with this decision, by name (`pcrs`, `eventLog`): the log stores each
   * distinct blob once and the record gets `evidence: {name: sha256}` instead.
   */
  evidence?: Record<string, Uint8Array>;
  [field: string]: unknown;
}

export interface AuditRecord {
  seq: number;
  time: string;
  prev: string;
  decision: DecisionKind;
  evidence?: Record<string, string>;
  [field: string]: unknown;
}

/** The head file: count and hash of the last record of a durable prefix of the log. */
export interface AuditHead {
  count: number;
  last: string;
}

/** Hard caps per record: a decision line, and one evidence blob (before base64). */
export interface AuditLimits {
  maxRecordBytes: number;
  maxEvidenceBytes: number;
}

export const DEFAULT_LIMITS: AuditLimits = { maxRecordBytes: 16 * 1024, maxEvidenceBytes: 1024 * 1024 };

export function sha256Hex(b: Uint8Array | string): string {
  return toHex(hash('sha256', typeof b === 'string' ? Buffer.from(b, 'utf8') : b));
}

/** The quoted PCRs as evidence (attestation/evidence.ts's canonical encoding). */
export { pcrValuesEvidence as pcrsEvidence } from '../../attestation/evidence.js';

const clip = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 200) : undefined);

/**
 * A bounded stand-in for a decision whose record cannot be written as is (too large, or not
 * serializable): what was decided and why, plus the size and hash of what was left out, so
 * the decision is never missing from the log and never floods it.
 */
function standIn(d: AuditDecision, why: { bytes?: number; sha256?: string; error?: string }): Record<string, unknown> {
  return { decision: d.decision, stage: clip(d.stage), code: clip(d.code), client: clip(d.client), round: clip(String(d.round ?? '')) || undefined, oversized: why };
}

export interface EncodedEntry {
  /** Lines (with their final newline) to write in order: new evidence records, then the decision. */
  lines: string[];
  records: AuditRecord[];
  head: AuditHead;
  newEvidence: string[];
}

/**
 * Chains one decision (and any evidence not yet in the log) after `head`. Throws
 * AUDIT_RECORD_TOO_LARGE only for a release: a secret is never sent on a partial record.
 * Any other decision over the cap is written as a bounded stand-in.
 */
export function encodeEntry(d: AuditDecision, head: AuditHead, time: string, known: (sha: string) => boolean, limits: AuditLimits): EncodedEntry {
  const out: EncodedEntry = { lines: [], records: [], head, newEvidence: [] };
  const push = (body: Record<string, unknown>, max: number): boolean => {
    const rec = { seq: out.head.count, time, prev: out.head.last, ...body } as AuditRecord;
    const line = JSON.stringify(rec);
    if (Buffer.byteLength(line, 'utf8') > max) return false;
    out.lines.push(line + '\n');
    out.records.push(rec);
    out.head = { count: out.head.count + 1, last: sha256Hex(line) };
    return true;
  };
  const tooLarge = (what: string): never => {
    throw new SextantError({ code: 'AUDIT_RECORD_TOO_LARGE', message: `audit record for this ${d.decision} is too large (${what}): nothing released` });
  };
  const { evidence, ...fields } = d;
  const refs: Record<string, string> = {};
  for (const [name, blob] of Object.entries(evidence ?? {})) {
    const sha = sha256Hex(blob);
    refs[name] = sha;
    if (known(sha) || out.newEvidence.includes(sha)) continue;
    if (blob.length > limits.maxEvidenceBytes) {
      if (d.decision === 'release') tooLarge(`${name} evidence is ${blob.length} bytes`);
      delete refs[name];
      continue;
    }
    push({ decision: 'evidence', kind: name, sha256: sha, bytes: blob.length, data: Buffer.from(blob).toString('base64') }, Infinity);
    out.newEvidence.push(sha);
  }
  const body = Object.keys(refs).length ? { ...fields, evidence: refs } : fields;
  let text: string | undefined;
  let error: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (e) {
    error = (e as Error).name;
  }
  if (text !== undefined && push(body, limits.maxRecordBytes)) return out;
  if (d.decision === 'release') tooLarge(error ?? `${Buffer.byteLength(text!, 'utf8')} bytes`);
  push(standIn(d, text === undefined ? { error } : { bytes: Buffer.byteLength(text, 'utf8'), sha256: sha256Hex(text) }), Infinity);
  return out;
}
