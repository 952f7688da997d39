import type { EventLogEvidence, SnpEvidenceMessage, TpmIdentityEvidence, TpmQuoteEvidence } from '../attestation/evidence.js';

/**
 * The messages between the agent and the key service (JSON over HTTPS). Binary fields are
 * base64 (standard alphabet), hashes and IDs lowercase hex. The evidence parts (TPM identity,
 * quote, event log, SNP report) are attestation/evidence.ts's format. See docs/protocol.md.
 */

export const PROTOCOL_VERSION = 1;

export const ROUTES = {
  nonce: '/v1/nonce',
  challenge: '/v1/attest/challenge',
  complete: '/v1/attest/complete',
  confirm: '/v1/attest/confirm',
  serviceAttest: '/v1/service/attest',
  serviceActivate: '/v1/service/activate',
} as const;

export type Role = 'join' | 'rejoin';

/** POST /v1/nonce: `{}` (nothing else is accepted). */
export interface NonceRequest {
  v?: 1;
}

export interface NonceResponse {
  v: 1;
  /** 32 random bytes, base64; single use, valid for `ttlSeconds`. */
  nonce: string;
  ttlSeconds: number;
}

/** Round 1: the node's TPM identity. */
export interface ChallengeRequest extends TpmIdentityEvidence {
  v: 1;
  /**
   * Asks for the round-2 nonce in the answer (saves the /v1/nonce request). Agents before it
   * leave it out and fetch the nonce first; a key service before it refuses the field
   * (closed schema, PROTOCOL_INVALID): upgrade the key service before the agents.
   */
  withNonce?: true;
}

/** Round 1 answer: a TPM2_MakeCredential blob only the EK's TPM can open, and only for that AK. */
export interface ChallengeResponse {
  v: 1;
  /** Opaque, single use, names this attestation session for round 2. */
  sessionId: string;
  /** TPM2B_ID_OBJECT contents (integrity HMAC + encrypted credential), base64. */
  credentialBlob: string;
  /** TPM2B_ENCRYPTED_SECRET contents (seed encrypted to the EK), base64. */
  encryptedSecret: string;
  ttlSeconds: number;
  /** Only when the request had `withNonce`: as a NonceResponse's `nonce` (single use), valid for `nonceTtlSeconds`. */
  nonce?: string;
  nonceTtlSeconds?: number;
}

/** Non-secret facts about the machine, recorded in the audit log. */
export interface Inventory {
  vendor?: string;
  model?: string;
  serial?: string;
  disks?: { name: string; size: number; serial?: string }[];
}

/** Round 2: proof of credential activation plus the quote, bound to a nonce and an ephemeral key. */
export interface CompleteRequest extends TpmQuoteEvidence, EventLogEvidence {
  v: 1;
  sessionId: string;
  /** The credential TPM2_ActivateCredential returned, base64. */
  activatedCredential: string;
  /** The nonce from /v1/nonce, base64. */
  nonce: string;
  /** The agent's ephemeral ECDH P-256 public key, uncompressed point (65 bytes), base64. */
  ephemeralPublicKey: string;
  diskUuid: string;
  role: Role;
  /** Kubernetes node name (DNS-1123 label). */
  nodeName: string;
  /** PKCS#10 CSR (PEM) for the kubelet client certificate; optional. */
  csr?: string;
  inventory?: Inventory;
  /** SEV-SNP evidence, for the key service's SNP variants (docs/attestation-variants.md). */
  snp?: SnpEvidenceMessage;
}

/** Round 2 answer on success: everything secret is inside `sealed`. */
export interface CompleteResponse {
  v: 1;
  ok: true;
  sealed: SealedBox;
  /** Warn-only PCR mismatches (not secret; also in the audit log). */
  warnings: string[];
}

/** AES-256-GCM ciphertext to the agent's ephemeral key (see protocol/seal.ts). */
export interface SealedBox {
  /** The service's one-time ECDH P-256 public key, uncompressed point, base64. */
  epk: string;
  /** 12-byte GCM IV, base64. */
  iv: string;
  /** Ciphertext followed by the 16-byte GCM tag, base64. */
  ct: string;
}

/** What the sealed box holds (JSON, UTF-8). */
export interface ReleasedSecrets {
  /** HKDF-SHA256(masterSecret, salt, "key-" + diskUuid, 32), base64. */
  diskKey: string;
  clusterId: string;
  joinTicket?: JoinTicket;
  /** The capability for the post-lock confirm round (see ConfirmRequest). */
  confirm?: ConfirmSession;
}

/**
 * Names the accepted attestation for the confirm round: the service remembers the AK it
 * activated and the PCRs it accepted under this id. Sent only inside the sealed box, so only
 * the process that holds the attested session's ephemeral key learns it.
 */
export interface ConfirmSession {
  /** 32 hex digits. */
  id: string;
  /** ISO time after which the service has forgotten the session. */
  expiresAt: string;
}

/**
 * Post-lock confirm round: after TPM2_PCR_Event(15, clusterId) the agent proves the lock with
 * a fresh quote (same AK, same PCR selection), qualifying data
 * SHA-256("sextant-confirm-v1\0" || confirm id || "\0" || nonce) (protocol/seal.ts confirmQualifyingData).
 */
export interface ConfirmRequest extends TpmQuoteEvidence {
  v: 1;
  confirmId: string;
  /** A fresh nonce from /v1/nonce, base64. */
  nonce: string;
}

export interface ConfirmResponse {
  v: 1;
  ok: true;
  clusterId: string;
  /** The PCR 15 value the service verified (= its lock value). */
  pcr15: string;
}

export interface JoinTicket {
  apiServerEndpoint: string;
  /** kubeadm bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`. */
  token: string;
  tokenExpiresAt: string;
  /** `sha256:` + hex SHA-256 of the cluster CA's SubjectPublicKeyInfo (DER). */
  caCertHash: string;
  caCert: string;
  /** Kubelet client certificate issued from the node's CSR, PEM. */
  kubeletCert?: string;
}

/** Every non-2xx answer. */
export interface ErrorResponse {
  ok: false;
  code: string;
  message: string;
}

/**
 * Mutual attestation, before the agent sends any evidence of its own: the agent's fresh nonce
 * in, the key service's own TPM quote out, qualifying data
 * SHA-256("sextant-service-v1\0" || nonce || SHA-256 of the service's DER TLS certificate)
 * (protocol/seal.ts serviceQualifyingData), so a quote relayed by another server does not verify.
 */
export interface ServiceAttestRequest {
  v: 1;
  /** 32 random bytes chosen by the agent, base64. */
  nonce: string;
}

/** The service TPM's identity and its quote. */
export interface ServiceAttestResponse extends TpmIdentityEvidence, TpmQuoteEvidence {
  v: 1;
}

/** The agent's TPM2_MakeCredential to the service's EK for the service's AK. */
export interface ServiceActivateRequest {
  v: 1;
  credentialBlob: string;
  encryptedSecret: string;
}

export interface ServiceActivateResponse {
  v: 1;
  /** What TPM2_ActivateCredential returned in the service's TPM, base64. */
  credential: string;
}
