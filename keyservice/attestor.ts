import { createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { hash, toHex, zeroize } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';
import type { ExecLogger } from '../lib/exec.js';
import type { ChallengeRequest, ChallengeResponse, CompleteRequest, CompleteResponse, ConfirmRequest, ConfirmResponse, ReleasedSecrets } from '../protocol/messages.js';
import { qualifyingData, seal, sealContext } from '../protocol/seal.js';
import type { AuditLog } from './audit/log.js';
import { deriveClusterId, deriveDiskKey } from './derive.js';
import { makeJoinTicket, type JoinConfig } from './join-ticket.js';
import { LockConfirmer } from './lock-confirm.js';
import { checkMeasurements } from '../attestation/policy/check-measurements.js';
import { checkClusterLock } from './policy/cluster-lock.js';
import { checkNodeName, type NodeInventory } from './policy/node-name.js';
import { nameChangedComponents } from '../attestation/policy/name-components.js';
import { PcrMismatchError } from '../attestation/policy/pcr-mismatch.js';
import type { ReferenceSet } from '../attestation/policy/reference.js';
import { stage, stageAsync } from '../attestation/stage.js';
import { auditRefusal } from './stage.js';
import { checkDiskBinding } from './binding/check.js';
import type { DiskBindingStore } from './binding/store.js';
import { LocalSessionBook } from './store/local.js';
import type { NonceBook, SessionBook, SessionBookSpec } from './store/store.js';
import type { EventLogReplayer } from '../attestation/tpm/event-log.js';
import { dn } from '../attestation/tpm/ek-chain.js';
import { ekSpkiSha256 } from '../attestation/tpm/ek-key.js';
import type { AkIdentity, TpmChecks } from '../attestation/tpm/checks.js';
import type { SnpVariantSetup, Variant } from '../attestation/variant.js';
import { verifyIdentity, verifyProof } from '../attestation/tpm/verify.js';
import { EkChainCache } from '../attestation/tpm/ek-chain.js';

/**
 * The key service's verifier over two rounds: attestation/tpm/verify.ts's stage chain for the
 * variant (VARIANT_STAGES), then the key service's own policy and release:
 *
 *   round 1  verifyIdentity: parseEvidence -> verifyEkCert -> makeCredential -> [issueNonce] (challenge out)
 *   round 2  verifyProof: credentialProof -> verifySnpEvidence -> [SNP variants: bindAk] -> verifyQuote
 *            -> checkNonce -> checkPcrDigest -> replayEventLog (an AttestedState)
 *            -> applyPolicy -> checkNodeName -> checkDiskBinding -> release (sealed secrets out, with a confirm session)
 *
 * then, after the node locked PCR 15, the confirm round (keyservice/lock-confirm.ts).
 * The first failing stage refuses with its own error code; every decision is audited.
 */

export interface Attestor {
  challenge(req: ChallengeRequest, client: string): Promise<ChallengeResponse>;
  complete(req: CompleteRequest, client: string): Promise<CompleteResponse>;
  /** The post-lock confirm round (keyservice/lock-confirm.ts). */
  confirm(req: ConfirmRequest, client: string): Promise<ConfirmResponse>;
}

export interface AttestorOptions {
  ekCas: readonly X509Certificate[];
  tpm: TpmChecks;
  nonces: NonceBook;
  /** Where half-done sessions live (store/): default process memory; etcd when replicated. */
  sessions?: <T>(spec: SessionBookSpec<T>) => SessionBook<T>;
  /** Accepted measurement sets, newest first (two during a rollout). Read per request. */
  references: () => readonly ReferenceSet[];
  masterSecret: Buffer;
  salt: Buffer;
  /** Where decisions go: the key service's hash-chained log; `sextant recover` may keep none. */
  audit: Pick<AuditLog, 'append'>;
  replayEventLog?: EventLogReplayer;
  requireEventLog?: boolean;
  join?: JoinConfig;
  /** EK certificate SHA-256 -> the only node name that TPM may ask for (policy/node-name.ts). */
  nodeInventory?: NodeInventory;
  /** Disk UUID -> the EK it was first released to (binding/); without one, any attested TPM gets any UUID's key. */
  diskBindings?: DiskBindingStore;
  /** An SNP attestation variant (keyservice/variant/): the CPU's report must bind the AK too. Absent: qemu-vtpm. */
  snp?: SnpVariantSetup;
  sessionTtlMs?: number;
  /** How long a release can be confirmed after the lock (default 15 min: disk setup and kubeadm join come first). */
  confirmTtlMs?: number;
  maxSessions?: number;
  now?: () => Date;
  log?: ExecLogger;
}

interface Session {
  /** Absent for a TPM without one (an enrolled EK, or aws-sev-snp). */
  ekCert?: X509Certificate;
  ekKey: KeyObject;
  ak: AkIdentity;
  /** The AK's TPMT_PUBLIC as round 1 sent it (what an SNP report binds). */
  akPublic: Buffer;
  credential: Buffer;
  client: string;
}

/** A round-1 session as a shared store keeps it (sealed there: the credential proves the AK binding). */
export function attestSessionCodec(tpm: TpmChecks) {
  return {
    encode: (s: Session) =>
      Buffer.from(
        JSON.stringify({
          ek: s.ekCert?.raw.toString('base64'),
          ekKey: s.ekKey.export({ type: 'spki', format: 'der' }).toString('base64'),
          ak: s.akPublic.toString('base64'),
          credential: s.credential.toString('base64'),
          client: s.client,
        }),
      ),
    decode: (b: Buffer): Session => {
      const j = JSON.parse(b.toString('utf8')) as { ek?: string; ekKey: string; ak: string; credential: string; client: string };
      const akPublic = Buffer.from(j.ak, 'base64');
      return {
        ...(j.ek !== undefined && { ekCert: new X509Certificate(Buffer.from(j.ek, 'base64')) }),
        ekKey: createPublicKey({ key: Buffer.from(j.ekKey, 'base64'), format: 'der', type: 'spki' }),
        ak: tpm.parseAk(akPublic),
        akPublic,
        credential: Buffer.from(j.credential, 'base64'),
        client: j.client,
      };
    },
  };
}

export class KeyServiceAttestor implements Attestor {
  private readonly sessions: SessionBook<Session>;
  private readonly now: () => Date;
  /** The EK chains verified so far (bounded): the same nodes show the same certificates every boot. */
  private readonly ekChains: EkChainCache;
  private readonly clusterId: Buffer;
  private readonly confirmer: LockConfirmer;
  private readonly variant: Variant;

  constructor(private readonly o: AttestorOptions) {
    this.now = o.now ?? (() => new Date());
    this.ekChains = new EkChainCache(o.ekCas);
    this.variant = o.snp?.variant ?? 'qemu-vtpm';
    this.clusterId = deriveClusterId(o.masterSecret, o.salt);
    const books = o.sessions ?? (<T>(spec: SessionBookSpec<T>) => new LocalSessionBook<T>(spec, () => this.now().getTime()));
    this.sessions = books({
      name: 'attest',
      ttlMs: o.sessionTtlMs ?? 60_000,
      maxEntries: o.maxSessions ?? 100_000,
      // Round 1 is unauthenticated: a flood of openers is refused, it never pushes out sessions in progress.
      overflow: 'refuse',
      codec: attestSessionCodec(o.tpm),
      full: () => new SextantError({ code: 'RATE_LIMITED', message: 'too many open attestation sessions; retry later' }),
    });
    this.confirmer = new LockConfirmer({ tpm: o.tpm, nonces: o.nonces, audit: o.audit, clusterId: this.clusterId, ttlMs: o.confirmTtlMs ?? 15 * 60_000, maxSessions: o.maxSessions, now: this.now, sessions: books });
  }

  confirm(req: ConfirmRequest, client: string): Promise<ConfirmResponse> {
    return this.confirmer.confirm(req, client);
  }

  get clusterIdHex(): string {
    return toHex(this.clusterId);
  }

  async challenge(req: ChallengeRequest, client: string): Promise<ChallengeResponse> {
    const facts: Record<string, unknown> = { client, round: 1 };
    try {
      const { ekCert, ekKey, ak, akPublic, credential, challenge: blob } = verifyIdentity({
        evidence: req,
        ekRoots: this.o.ekCas,
        // The node inventory doubles as the enrolment of EKs that have no certificate.
        enrolledEks: this.o.nodeInventory && new Set(this.o.nodeInventory.keys()),
        ekCache: this.ekChains,
        credential: randomBytes(32),
        tpm: this.o.tpm,
        now: this.now(),
        variant: this.variant,
        facts,
      });
      const ttl = this.o.sessionTtlMs ?? 60_000;
      const { id: sessionId } = await stageAsync('makeCredential', () => this.sessions.open({ ekCert, ekKey, ak, akPublic, credential, client }));
      // The round-2 nonce with the challenge (protocol: withNonce), issued only once round 1 passed.
      const nonce = req.withNonce ? await stageAsync('issueNonce', async () => this.o.nonces.issue()) : undefined;
      await this.o.audit.append({ decision: 'challenge', ...facts, sessionId });
      return {
        v: 1,
        sessionId,
        credentialBlob: blob.credentialBlob.toString('base64'),
        encryptedSecret: blob.encryptedSecret.toString('base64'),
        ttlSeconds: Math.round(ttl / 1000),
        ...(nonce && { nonce: nonce.toString('base64'), nonceTtlSeconds: Math.round(this.o.nonces.ttlMs / 1000) }),
      };
    } catch (e) {
      throw await this.refused(e, facts);
    }
  }

  async complete(req: CompleteRequest, client: string): Promise<CompleteResponse> {
    // Until the credential proof holds, the requester is anybody: its refusal is audited with
    // fixed-size facts only (address, session id, stage, code), never with the fields it chose.
    const facts: Record<string, unknown> = { client, round: 2, sessionId: req.sessionId };
    const secrets: Buffer[] = [];
    const nonce = Buffer.from(req.nonce, 'base64');
    // Consumed before anything is checked: a refused request, at any stage, has used its nonce up.
    const nonceRefusal = await this.o.nonces.take(nonce);
    try {
      const session = await stageAsync('credentialProof', () => this.takeSession(req.sessionId));
      facts.akName = toHex(session.ak.name);
      if (session.ekCert) facts.ekSubject = dn(session.ekCert.subject);
      const ephemeral = Buffer.from(req.ephemeralPublicKey, 'base64');
      const attested = verifyProof({
        identity: session,
        evidence: req,
        // The quote must be signed by the activated AK over H(nonce || ephemeral key), and the
        // nonce must be one we issued, unused and fresh (consumed above, whatever the verdict).
        qualifyingData: qualifyingData(nonce, ephemeral),
        nonceRefusal,
        tpm: this.o.tpm,
        variant: this.variant,
        snp: this.o.snp,
        replayEventLog: this.o.replayEventLog,
        requireEventLog: this.o.requireEventLog,
        now: this.now(),
        facts,
        claims: { diskUuid: req.diskUuid, role: req.role, nodeName: req.nodeName, inventory: req.inventory },
      });
      const quoted = attested.quote;
      const verdict = stage('applyPolicy', () => {
        const v = this.checkMeasurementsNamingComponents(req.pcrs, req.eventLog, facts);
        facts.clusterLock = checkClusterLock(req.role, req.pcrs['15'], this.clusterId);
        return v;
      });
      stage('checkNodeName', () => checkNodeName(this.o.nodeInventory, session.ekCert ? toHex(hash('sha256', session.ekCert.raw)) : ekSpkiSha256(session.ekKey), req.nodeName));
      facts.measurements = verdict.matched.label;
      facts.warnings = verdict.warnings;
      if (this.o.diskBindings) await checkDiskBinding(this.o.diskBindings, req.diskUuid, session.ekKey, req.nodeName, facts);

      const diskKey = deriveDiskKey(this.o.masterSecret, this.o.salt, req.diskUuid);
      secrets.push(diskKey);
      const released: ReleasedSecrets = {
        diskKey: diskKey.toString('base64'),
        clusterId: this.clusterIdHex,
        // A rejoining node's kubelet credentials live on its state disk: no new join ticket.
        joinTicket: this.o.join && req.role === 'join' ? await makeJoinTicket(this.o.join, req.nodeName, req.csr, this.now(), this.o.log) : undefined,
        confirm: await this.confirmer.open({
          ak: session.ak,
          akPublic: session.akPublic,
          pcrs: req.pcrs,
          resetCount: quoted.resetCount,
          restartCount: quoted.restartCount,
          sessionId: req.sessionId,
          diskUuid: req.diskUuid,
          nodeName: req.nodeName,
          role: req.role,
        }),
      };
      const plaintext = Buffer.from(JSON.stringify(released), 'utf8');
      secrets.push(plaintext);
      const sealed = seal(plaintext, ephemeral, sealContext(req.sessionId, nonce, ephemeral));
      await this.o.audit.append({ decision: 'release', ...facts, tokenId: released.joinTicket?.token.slice(0, 6) });
      return { v: 1, ok: true, sealed, warnings: verdict.warnings };
    } catch (e) {
      throw await this.refused(e, facts);
    } finally {
      zeroize(...secrets);
    }
  }

  /**
   * checkMeasurements, and on a mismatch the components that changed (from the signed events
   * and the firmware log) in the audit record and the error the node sees.
   */
  private checkMeasurementsNamingComponents(pcrs: Record<string, string>, eventLog: string | undefined, facts: Record<string, unknown>) {
    const sets = this.o.references();
    try {
      return checkMeasurements(sets, pcrs);
    } catch (e) {
      if (!(e instanceof PcrMismatchError)) throw e;
      facts.mismatches = e.mismatches;
      const changed = eventLog === undefined ? [] : nameChangedComponents(sets[0], e.mismatches, Buffer.from(eventLog, 'base64'));
      if (changed.length === 0) throw e;
      facts.changedComponents = changed;
      const named = [...new Set(changed.map((c) => `PCR ${c.pcr} ${c.component}`))].join(', ');
      throw new SextantError({ code: e.code, message: e.withComponents(named), cause: e });
    }
  }

  private async takeSession(id: string): Promise<Session> {
    const s = await this.sessions.take(id);
    if (!s) throw new SextantError({ code: 'SESSION_UNKNOWN', message: 'attestation session unknown, used or expired: start again with round 1' });
    return s;
  }

  private refused(e: unknown, facts: Record<string, unknown>): Promise<unknown> {
    return auditRefusal(this.o.audit, e, facts, 'release');
  }
}
