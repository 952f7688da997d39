import type { RecoveryEvidenceRequest, RecoveryEvidenceResponse, RecoveryQuoteRequest, RecoveryQuoteResponse, RecoveryReleaseRequest, RecoveryReleaseResponse } from './recovery-messages.js';
import type { ChallengeRequest, CompleteRequest, CompleteResponse, ChallengeResponse, ConfirmRequest, ConfirmResponse, NonceRequest, ServiceActivateRequest, ServiceActivateResponse, ServiceAttestRequest, ServiceAttestResponse, NonceResponse, ReleasedSecrets, Role } from './messages.js';
import { base64, check, fixedKeys, int, isPlainObject, list, literal, object, oneOf, refine, text, type Schema } from './schema.js';
import { MAX_EK_CHAIN } from '../attestation/evidence.js';

/**
 * Runtime validation of every protocol message: both sides parse untrusted JSON. Each schema
 * is closed (unknown keys are refused) and bounds every field (protocol/schema.ts); each
 * `assert*` lists the first invalid fields in one PROTOCOL_INVALID error. The bounds are
 * what real TPMs and agents send, with room: an EK certificate of a few hundred bytes is
 * allowed 8 KiB, a TPMT_PUBLIC 1 KiB, a quote 2 KiB.
 */

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const NODE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HEX64 = /^[0-9a-f]{64}$/;
const SESSION_RE = /^[0-9a-f]{32}$/;
/** The largest event log accepted (decoded); real firmware logs are 20-200 KiB. */
export const MAX_EVENT_LOG_BYTES = 3 * 1024 * 1024;

const V1 = literal(1);
const hex64 = text(64, HEX64, '64 lowercase hex digits');
const sessionId = text(32, SESSION_RE, '32 hex digits');
const nonce = base64({ exact: 32 });
const cert = base64({ min: 64, max: 8192 });
const uuid = text(36, UUID_RE, 'a lowercase UUID');
const nodeName = text(63, NODE_NAME_RE, 'a DNS-1123 label');
const ttlSeconds = int(1, 7 * 24 * 3600);
const isoTime = refine(text(64), (s) => !Number.isNaN(Date.parse(s)), 'an ISO time');
const pem = (label: string, max: number) => text(max, new RegExp(`-----BEGIN ${label}-----`), `a PEM ${label.toLowerCase()} of at most ${max} characters`);

/** PCRs 0-15 of the SHA-256 bank, index -> hex: exactly what a quote covers. */
const PCR_INDICES = Array.from({ length: 16 }, (_, i) => String(i));
const pcrs = fixedKeys(PCR_INDICES, hex64, 'PCR index (0-15) -> 64 hex digits');

/** A TPM's identity: EK certificate (+ chain) and AK public (a node's in round 1, the service's in S1). */
const tpmIdentity = {
  ekCert: cert,
  ekChain: list(cert, MAX_EK_CHAIN),
  akPublic: base64({ min: 16, max: 1024 }),
};
/** A quote and the PCR values it covers. */
const quote = {
  quoteAttest: base64({ min: 16, max: 2048 }),
  quoteSignature: base64({ min: 8, max: 1024 }),
  pcrs,
};
/** The node's evidence in round 2 (key service) and in the recovery quote answer. */
const quoteEvidence = {
  activatedCredential: base64({ min: 1, max: 64 }),
  ephemeralPublicKey: base64({ exact: 65 }),
  ...quote,
  eventLog: base64({ max: MAX_EVENT_LOG_BYTES }),
  diskUuid: uuid,
};

/** Non-secret machine facts (agent/attest/inventory.ts cuts every string to 256 characters). */
const inventory = object(
  {
    vendor: text(256),
    model: text(256),
    serial: text(256),
    disks: list(object({ name: text(256), size: int(0, Number.MAX_SAFE_INTEGER), serial: text(256) }, ['serial']), 64),
  },
  ['vendor', 'model', 'serial', 'disks'],
);

/**
 * SEV-SNP evidence (round 2 of the SNP variants). Azure's HCL report NV index is 2.6 KiB
 * (1236 bytes + runtime data of a few hundred); 16 KiB leaves room. AMD's certificates are
 * ~1.4 KiB (VCEK) and ~1.6 KiB (ASK, ARK).
 */
export const MAX_SNP_REPORT_BYTES = 16 * 1024;
const snpEvidence = object(
  {
    report: base64({ min: 1184, max: MAX_SNP_REPORT_BYTES }),
    vcek: cert,
    chain: list(cert, 4),
    runtimeData: base64({ min: 2, max: MAX_SNP_REPORT_BYTES }),
  },
  ['chain', 'runtimeData'],
);

const sealedBox = (maxBytes: number) => object({ epk: base64({ exact: 65 }), iv: base64({ exact: 12 }), ct: base64({ min: 17, max: maxBytes }) });

/** `base`, and of the optional fields `a` and `b` exactly one present, or both or neither. */
function pairRule(base: Schema, a: string, b: string, rule: 'exactly one' | 'both or neither'): Schema {
  return (v, at, p) => {
    base(v, at, p);
    if (!isPlainObject(v)) return;
    const one = (v[a] === undefined) !== (v[b] === undefined);
    if (one !== (rule === 'exactly one')) p.add(at, rule === 'exactly one' ? `must have exactly one of ${a} and ${b}` : `must have both of ${a} and ${b} or neither`);
  };
}

export const SCHEMAS = {
  /** The nonce request carries nothing: `{}` (or `{"v":1}`). */
  nonceRequest: object({ v: V1 }, ['v']),
  nonceResponse: object({ v: V1, nonce, ttlSeconds }),
  // A TPM without an EK certificate sends its EK public area instead (exactly one of the two).
  challengeRequest: pairRule(object({ v: V1, ...tpmIdentity, ekPublic: base64({ min: 16, max: 1024 }), withNonce: literal(true) }, ['ekCert', 'ekChain', 'ekPublic', 'withNonce']), 'ekCert', 'ekPublic', 'exactly one'),
  // The round-2 nonce comes with its lifetime (withNonce), or neither does.
  challengeResponse: pairRule(
    object({ v: V1, sessionId, credentialBlob: base64({ min: 16, max: 1024 }), encryptedSecret: base64({ min: 16, max: 1024 }), ttlSeconds, nonce, nonceTtlSeconds: ttlSeconds }, ['nonce', 'nonceTtlSeconds']),
    'nonce',
    'nonceTtlSeconds',
    'both or neither',
  ),
  completeRequest: object(
    {
      v: V1,
      sessionId,
      nonce,
      ...quoteEvidence,
      role: oneOf(['join', 'rejoin']),
      nodeName,
      csr: pem('CERTIFICATE REQUEST', 16384),
      inventory,
      snp: snpEvidence,
    },
    ['eventLog', 'csr', 'inventory', 'snp'],
  ),
  completeResponse: object({ v: V1, ok: literal(true), sealed: sealedBox(256 * 1024), warnings: list(text(1024), 64) }),
  releasedSecrets: object(
    {
      diskKey: base64({ exact: 32 }),
      clusterId: hex64,
      joinTicket: object(
        {
          apiServerEndpoint: text(512),
          token: text(23, /^[a-z0-9]{6}\.[a-z0-9]{16}$/, 'a bootstrap token'),
          tokenExpiresAt: text(64),
          caCertHash: text(71, /^sha256:[0-9a-f]{64}$/, 'sha256:<hex>'),
          caCert: text(65536),
          kubeletCert: text(65536),
        },
        ['kubeletCert'],
      ),
      confirm: object({ id: sessionId, expiresAt: isoTime }),
    },
    ['joinTicket', 'confirm'],
  ),
  confirmRequest: object({ v: V1, confirmId: sessionId, nonce, ...quote }),
  confirmResponse: object({ v: V1, ok: literal(true), clusterId: hex64, pcr15: hex64 }),
  recoveryEvidenceRequest: object({ v: V1, nonce }),
  recoveryEvidenceResponse: object({ v: V1, session: sessionId, ...tpmIdentity }, ['ekChain']),
  recoveryQuoteResponse: object({ v: V1, session: sessionId, nodeName, ...quoteEvidence }, ['nodeName', 'eventLog']),
  recoveryReleaseRequest: object({ v: V1, session: sessionId, sealed: sealedBox(64 * 1024) }),
  recoveryReleaseResponse: object({ v: V1, ok: literal(true) }),
  serviceAttestRequest: object({ v: V1, nonce }),
  serviceAttestResponse: object({ v: V1, ...tpmIdentity, ...quote }, ['ekChain']),
  serviceActivateRequest: object({ v: V1, credentialBlob: base64({ min: 16, max: 1024 }), encryptedSecret: base64({ min: 16, max: 1024 }) }),
  serviceActivateResponse: object({ v: V1, credential: base64({ min: 1, max: 64 }) }),
} satisfies Record<string, Schema>;

// The recovery quote request carries a key service round-1 answer as it is.
const recoveryQuoteRequest = object({ v: V1, session: sessionId, challenge: SCHEMAS.challengeResponse });

export function decodeB64(s: string): Buffer {
  return Buffer.from(s, 'base64');
}

export function isRole(x: unknown): x is Role {
  return x === 'join' || x === 'rejoin';
}

export function assertNonceRequest(x: unknown): asserts x is NonceRequest {
  check(SCHEMAS.nonceRequest, x, 'nonce request');
}
export function assertNonceResponse(x: unknown): asserts x is NonceResponse {
  check(SCHEMAS.nonceResponse, x, 'nonce response');
}
export function assertChallengeRequest(x: unknown): asserts x is ChallengeRequest {
  check(SCHEMAS.challengeRequest, x, 'challenge request');
}
export function assertChallengeResponse(x: unknown): asserts x is ChallengeResponse {
  check(SCHEMAS.challengeResponse, x, 'challenge response');
}
export function assertCompleteRequest(x: unknown): asserts x is CompleteRequest {
  check(SCHEMAS.completeRequest, x, 'attestation request');
}
export function assertCompleteResponse(x: unknown): asserts x is CompleteResponse {
  check(SCHEMAS.completeResponse, x, 'attestation response');
}
export function assertReleasedSecrets(x: unknown): asserts x is ReleasedSecrets {
  check(SCHEMAS.releasedSecrets, x, 'released secrets');
}
export function assertConfirmRequest(x: unknown): asserts x is ConfirmRequest {
  check(SCHEMAS.confirmRequest, x, 'confirm request');
}
export function assertConfirmResponse(x: unknown): asserts x is ConfirmResponse {
  check(SCHEMAS.confirmResponse, x, 'confirm response');
}

// ---- recovery (protocol/recovery-messages.ts) ----

export function assertRecoveryEvidenceRequest(x: unknown): asserts x is RecoveryEvidenceRequest {
  check(SCHEMAS.recoveryEvidenceRequest, x, 'recovery evidence request');
}
export function assertRecoveryEvidenceResponse(x: unknown): asserts x is RecoveryEvidenceResponse {
  check(SCHEMAS.recoveryEvidenceResponse, x, 'recovery evidence');
}
export function assertRecoveryQuoteRequest(x: unknown): asserts x is RecoveryQuoteRequest {
  check(recoveryQuoteRequest, x, 'recovery quote request');
}
export function assertRecoveryQuoteResponse(x: unknown): asserts x is RecoveryQuoteResponse {
  check(SCHEMAS.recoveryQuoteResponse, x, 'recovery quote');
}
export function assertRecoveryReleaseRequest(x: unknown): asserts x is RecoveryReleaseRequest {
  check(SCHEMAS.recoveryReleaseRequest, x, 'recovery release');
}
export function assertRecoveryReleaseResponse(x: unknown): asserts x is RecoveryReleaseResponse {
  check(SCHEMAS.recoveryReleaseResponse, x, 'recovery release answer');
}

// ---- mutual attestation (the key service's own quote) ----

export function assertServiceAttestRequest(x: unknown): asserts x is ServiceAttestRequest {
  check(SCHEMAS.serviceAttestRequest, x, 'service attestation request');
}
export function assertServiceAttestResponse(x: unknown): asserts x is ServiceAttestResponse {
  check(SCHEMAS.serviceAttestResponse, x, 'service attestation');
}
export function assertServiceActivateRequest(x: unknown): asserts x is ServiceActivateRequest {
  check(SCHEMAS.serviceActivateRequest, x, 'service activation request');
}
export function assertServiceActivateResponse(x: unknown): asserts x is ServiceActivateResponse {
  check(SCHEMAS.serviceActivateResponse, x, 'service activation');
}
