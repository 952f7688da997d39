/**
 * The recovery protocol (`sextant recover` -> a node's recovery endpoint): the key service's
 * attestation with the roles reversed. The node serves, the admin verifies and releases:
 *
 *   1. admin -> node  evidence  {nonce}                  node -> {session, ekCert, akPublic}
 *   2. admin -> node  quote     {session, challenge}     node -> {activated credential, quote
 *                     (MakeCredential to the node's EK)    over H(nonce || node ephemeral key),
 *                                                          PCRs, event log, disk UUID}
 *   3. admin -> node  release   {session, sealed}        node -> {ok}   (one success closes it)
 *
 * The admin verifies with the key service's own attestor (keyservice/attestor.ts, on attestation/'s stages) before it
 * sends anything secret; `sealed` is protocol/seal.ts to the node's ephemeral key with the
 * context sealContext(challenge.sessionId, nonce, ephemeral key). Binary fields are base64.
 */
import type { TpmIdentityEvidence } from '../attestation/evidence.js';
import type { ChallengeResponse, CompleteRequest, SealedBox } from './messages.js';

export const RECOVERY_ROUTES = {
  evidence: '/v1/recovery/evidence',
  quote: '/v1/recovery/quote',
  release: '/v1/recovery/release',
} as const;

/** Step 1: the admin's fresh nonce (32 random bytes, base64). */
export interface RecoveryEvidenceRequest {
  v: 1;
  nonce: string;
}

/** Step 1 answer: the node's TPM identity, as in the key service's round 1. */
export interface RecoveryEvidenceResponse extends TpmIdentityEvidence {
  v: 1;
  /** Names this recovery session on the node (32 hex digits). */
  session: string;
}

/** Step 2: the admin's credential challenge, exactly the key service's round-1 answer. */
export interface RecoveryQuoteRequest {
  v: 1;
  session: string;
  challenge: ChallengeResponse;
}

/** Step 2 answer: the evidence an agent sends the key service in round 2 (the admin adds nonce, role, session). */
export type RecoveryQuoteResponse = { v: 1; session: string; nodeName?: string } & Pick<
  CompleteRequest,
  'activatedCredential' | 'ephemeralPublicKey' | 'quoteAttest' | 'quoteSignature' | 'pcrs' | 'eventLog' | 'diskUuid'
>;

/** Step 3: the secrets (disk key, cluster ID) sealed to the node's ephemeral key. */
export interface RecoveryReleaseRequest {
  v: 1;
  session: string;
  sealed: SealedBox;
}

export interface RecoveryReleaseResponse {
  v: 1;
  ok: true;
}
