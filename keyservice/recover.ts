import type { X509Certificate } from 'node:crypto';
import { hash, toHex, zeroize } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';
import { RECOVERY_ROUTES, type RecoveryQuoteRequest, type RecoveryReleaseRequest } from '../protocol/recovery-messages.js';
import { assertRecoveryEvidenceResponse, assertRecoveryQuoteResponse, assertRecoveryReleaseResponse } from '../protocol/validate.js';
import type { AuditDecision, AuditLog } from './audit/log.js';
import { KeyServiceAttestor } from './attestor.js';
import type { DiskBindingStore } from './binding/store.js';
import { deriveDiskKey } from './derive.js';
import { NonceStore } from './nonce-store.js';
import type { ReferenceSet } from '../attestation/policy/reference.js';
import { replaySha256 } from './service.js';
import { codecTpmChecks } from '../attestation/tpm/codec-checks.js';
import type { TpmChecks } from '../attestation/tpm/checks.js';

/**
 * The admin's side of recovery (`sextant recover`): the key service's verifier run against
 * one node's recovery endpoint. The node is attested with the very same attestor the key
 * service runs (EK chain, credential activation, quote signature over H(our nonce || node
 * key), nonce, pcrDigest, event log, measurements, PCR 15), and only when every stage passed
 * is the disk key sent, sealed to the node's one-time key. A refusal throws the stage's
 * code before anything secret leaves this process.
 */

export interface RecoverNodeOptions {
  /** POSTs JSON to the node over TLS pinned to its fingerprint (agent/attest/transport's postJson). */
  post: (route: string, body: unknown) => Promise<unknown>;
  /** Names the node in the audit records. */
  node: string;
  masterSecret: Buffer;
  salt: Buffer;
  references: readonly ReferenceSet[];
  ekCas: readonly X509Certificate[];
  requireEventLog?: boolean;
  /** Every decision is also appended here (the key service's audit log format). */
  audit?: Pick<AuditLog, 'append'>;
  tpm?: TpmChecks;
  now?: () => Date;
  /** The key service's disk bindings: recovery respects them like a release (DISK_BOUND_ELSEWHERE). */
  diskBindings?: DiskBindingStore;
}

export interface RecoverNodeResult {
  node: string;
  nodeName?: string;
  diskUuid: string;
  /** SHA-256 of the disk key that was sent (never the key). */
  diskKeySha256: string;
  clusterId: string;
  /** PCR 15 as verified: zero (rebooted or never locked), or this cluster's lock. */
  clusterLock: 'unlocked' | 'locked-to-this-cluster';
  /** The measurement set the node matched. */
  measurements: string;
  /** The binding checked (absent when no binding store was given): made now, or already this node's. */
  diskBinding?: { state: 'bound-now' | 'bound-to-this-node'; revision: number; ekPublicSha256: string };
  warnings: string[];
}

const ZERO_PCR = '0'.repeat(64);

export async function recoverNode(o: RecoverNodeOptions): Promise<RecoverNodeResult> {
  const decisions: AuditDecision[] = [];
  const nonces = new NonceStore({ clock: o.now && (() => o.now!().getTime()) });
  const attestor = new KeyServiceAttestor({
    ekCas: o.ekCas,
    tpm: o.tpm ?? codecTpmChecks,
    nonces,
    references: () => o.references,
    masterSecret: o.masterSecret,
    salt: o.salt,
    audit: {
      append: async (d) => {
        decisions.push(d);
        return o.audit ? o.audit.append({ ...d, recovery: true }) : { seq: decisions.length - 1, time: new Date().toISOString(), prev: '', decision: d.decision };
      },
    },
    replayEventLog: replaySha256,
    requireEventLog: o.requireEventLog,
    diskBindings: o.diskBindings,
    now: o.now,
  });

  const nonce = nonces.issue();
  const evidence = await o.post(RECOVERY_ROUTES.evidence, { v: 1, nonce: nonce.toString('base64') });
  assertRecoveryEvidenceResponse(evidence);
  const challenge = await attestor.challenge({ v: 1, ekCert: evidence.ekCert, ekChain: evidence.ekChain, akPublic: evidence.akPublic }, o.node);
  const quoteReq: RecoveryQuoteRequest = { v: 1, session: evidence.session, challenge };
  const quoted = await o.post(RECOVERY_ROUTES.quote, quoteReq);
  assertRecoveryQuoteResponse(quoted);
  if (quoted.session !== evidence.session) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the node answered for another recovery session' });

  // A node in recovery has a state disk of this cluster: the key service's rejoin policy, PCR
  // 15 zero (rebooted) or this cluster's lock, anything else refused (CLUSTER_LOCK_MISMATCH).
  const role = 'rejoin';
  const released = await attestor.complete(
    {
      v: 1,
      sessionId: challenge.sessionId,
      activatedCredential: quoted.activatedCredential,
      nonce: nonce.toString('base64'),
      ephemeralPublicKey: quoted.ephemeralPublicKey,
      quoteAttest: quoted.quoteAttest,
      quoteSignature: quoted.quoteSignature,
      pcrs: quoted.pcrs,
      eventLog: quoted.eventLog,
      diskUuid: quoted.diskUuid,
      role,
      nodeName: quoted.nodeName ?? 'recovery',
    },
    o.node,
  );
  // Verified: only now does anything secret leave.
  const release: RecoveryReleaseRequest = { v: 1, session: evidence.session, sealed: released.sealed };
  assertRecoveryReleaseResponse(await o.post(RECOVERY_ROUTES.release, release));

  const key = deriveDiskKey(o.masterSecret, o.salt, quoted.diskUuid);
  const releasedRecord = decisions.find((d) => d.decision === 'release');
  const binding = releasedRecord?.diskBinding as { state: 'bound-now' | 'bound-to-this-node'; revision: number } | undefined;
  try {
    return {
      node: o.node,
      nodeName: quoted.nodeName,
      diskUuid: quoted.diskUuid,
      diskKeySha256: toHex(hash('sha256', key)),
      clusterId: attestor.clusterIdHex,
      clusterLock: quoted.pcrs['15'] === ZERO_PCR ? 'unlocked' : 'locked-to-this-cluster',
      measurements: String(releasedRecord?.measurements ?? ''),
      ...(binding && { diskBinding: { ...binding, ekPublicSha256: String(releasedRecord?.ekPublicSha256) } }),
      warnings: released.warnings,
    };
  } finally {
    zeroize(key);
  }
}
