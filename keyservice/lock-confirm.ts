import { toHex } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';
import type { ConfirmRequest, ConfirmResponse, ConfirmSession, Role } from '../protocol/messages.js';
import { confirmQualifyingData } from '../protocol/seal.js';
import type { AuditLog } from './audit/log.js';
import { clusterLockPcr } from './derive.js';
import type { NonceBook, SessionBook, SessionBookSpec } from './store/store.js';
import { stage, stageAsync } from '../attestation/stage.js';
import { auditRefusal } from './stage.js';
import { QUOTED_PCRS } from '../attestation/tpm/pcr-digest.js';
import { verifyQuoteEvidence } from '../attestation/tpm/verify.js';
import type { AkIdentity, QuotedFacts, TpmChecks } from '../attestation/tpm/checks.js';

/**
 * The post-lock confirm round. A release opens a confirm session that remembers what was
 * proven: the AK (bound to the EK by credential activation in that attestation), the PCR
 * values accepted, the TPM's boot counters. The session id travels only inside the sealed
 * answer. The agent extends PCR 15 with the cluster ID, then quotes again with the same AK
 * over a fresh nonce; the service checks
 *
 *   confirmSession -> [attestation/tpm/verify.ts verifyQuoteEvidence: verifyQuote (same AK,
 *   qualifying data H(tag || id || nonce))
 *   -> checkNonce -> checkPcrDigest] -> checkSameBoot -> checkPcrsUnchanged (0-14)
 *   -> checkLock (PCR 15 = H(0^32 || H(clusterID)))
 *
 * and audits `lock-confirmed` with every quoted PCR value. A session outlives refusals (each
 * try needs a fresh nonce) and confirmed ones (a lost answer can be confirmed again) until its
 * TTL; a node that rebooted must attest again.
 */

export interface AcceptedAttestation {
  ak: AkIdentity;
  /** Its TPMT_PUBLIC: what a shared store keeps (the identity is parsed again from it). */
  akPublic: Buffer;
  /** The PCRs the attestation was accepted with (0-15, hex). */
  pcrs: Record<string, string>;
  resetCount: number;
  restartCount: number;
  sessionId: string;
  diskUuid: string;
  nodeName: string;
  role: Role;
}

/** A confirm session as a shared store keeps it. */
export function confirmSessionCodec(tpm: TpmChecks) {
  return {
    encode: ({ ak: _ak, akPublic, ...rest }: AcceptedAttestation) => Buffer.from(JSON.stringify({ ...rest, akPublic: akPublic.toString('base64') })),
    decode: (b: Buffer): AcceptedAttestation => {
      const j = JSON.parse(b.toString('utf8')) as Omit<AcceptedAttestation, 'ak' | 'akPublic'> & { akPublic: string };
      const akPublic = Buffer.from(j.akPublic, 'base64');
      return { ...j, akPublic, ak: tpm.parseAk(akPublic) };
    },
  };
}

export interface LockConfirmOptions {
  tpm: TpmChecks;
  nonces: NonceBook;
  audit: Pick<AuditLog, 'append'>;
  clusterId: Uint8Array;
  ttlMs: number;
  maxSessions?: number;
  now: () => Date;
  /** Where the sessions live (store/): the attestor's books (process memory or etcd). */
  sessions: <T>(spec: SessionBookSpec<T>) => SessionBook<T>;
}

export class LockConfirmer {
  private readonly sessions: SessionBook<AcceptedAttestation>;

  constructor(private readonly o: LockConfirmOptions) {
    this.sessions = o.sessions({
      name: 'confirm',
      ttlMs: o.ttlMs,
      maxEntries: o.maxSessions ?? 100_000,
      // Opened only by a release, which must never be refused for want of room: the oldest goes.
      overflow: 'evict-oldest',
      codec: confirmSessionCodec(o.tpm),
      full: () => new SextantError({ code: 'RATE_LIMITED', message: 'too many confirm sessions' }),
    });
  }

  /** Called at release: the id goes into the sealed answer. */
  async open(a: AcceptedAttestation): Promise<ConfirmSession> {
    const { id, expiresAt } = await this.sessions.open(a);
    return { id, expiresAt: new Date(expiresAt).toISOString() };
  }

  async confirm(req: ConfirmRequest, client: string): Promise<ConfirmResponse> {
    const facts: Record<string, unknown> = { client, round: 'confirm' };
    const lock = toHex(clusterLockPcr(this.o.clusterId));
    const nonce = Buffer.from(req.nonce, 'base64');
    // Consumed before anything is checked: a refused quote has used its nonce up.
    const nonceRefusal = await this.o.nonces.take(nonce);
    try {
      const s = await stageAsync('confirmSession', () => this.session(req.confirmId));
      Object.assign(facts, { sessionId: s.sessionId, diskUuid: s.diskUuid, nodeName: s.nodeName, role: s.role, akName: toHex(s.ak.name) });
      const quoted = verifyQuoteEvidence({ ak: s.ak, evidence: req, qualifyingData: confirmQualifyingData(req.confirmId, nonce), nonceRefusal, tpm: this.o.tpm, facts });
      stage('checkSameBoot', () => checkSameBoot(s, quoted));
      stage('checkPcrsUnchanged', () => checkPcrsUnchanged(s.pcrs, req.pcrs));
      stage('checkLock', () => {
        if (req.pcrs['15'] !== lock) {
          throw new SextantError({ code: 'CLUSTER_LOCK_MISMATCH', message: `PCR 15 is ${req.pcrs['15']}, not this cluster's lock ${lock}` });
        }
      });
      await this.o.audit.append({ decision: 'lock-confirmed', ...facts, clusterId: toHex(this.o.clusterId), lockPcr15: lock });
      return { v: 1, ok: true, clusterId: toHex(this.o.clusterId), pcr15: lock };
    } catch (e) {
      throw await auditRefusal(this.o.audit, e, facts, 'confirm');
    }
  }

  private async session(id: string): Promise<AcceptedAttestation> {
    const s = await this.sessions.get(id);
    if (!s) {
      throw new SextantError({ code: 'SESSION_UNKNOWN', message: 'confirm session unknown or expired: attest again' });
    }
    return s;
  }
}

/** TPM Reset / Restart counters of the same AK's quotes: equal means no reboot in between. */
function checkSameBoot(s: AcceptedAttestation, q: QuotedFacts): void {
  if (q.resetCount !== s.resetCount || q.restartCount !== s.restartCount) {
    throw new SextantError({ code: 'CONFIRM_REBOOTED', message: 'the TPM was reset or restarted since the attestation: attest again' });
  }
}

/**
 * PCR 10 is the kernel's IMA runtime log, not boot state: with Secure Boot on, the kernel's
 * architecture policy measures every module it loads (the agent's cryptsetup loads dm-crypt
 * between the attestation and the confirm; seen on the node image's Secure Boot boot), so it
 * moves by design. sextant enforces no IMA policy; the attestation never compares PCR 10.
 */
export const RUNTIME_PCRS: readonly number[] = [10];

/** PCRs 0-14 but PCR 10 must be exactly the ones accepted: PCR 15 may move, and only to the lock. */
function checkPcrsUnchanged(accepted: Record<string, string>, now: Record<string, string>): void {
  const changed = QUOTED_PCRS.filter((i) => i !== 15 && !RUNTIME_PCRS.includes(i) && accepted[String(i)] !== now[String(i)]);
  if (changed.length) {
    throw new SextantError({
      code: 'CONFIRM_PCRS_CHANGED',
      message: `PCR${changed.length > 1 ? 's' : ''} ${changed.join(', ')} changed since the accepted attestation: ` + changed.map((i) => `PCR ${i} was ${accepted[String(i)]}, now ${now[String(i)]}`).join('; '),
    });
  }
}
