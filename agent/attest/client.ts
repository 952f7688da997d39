import { hash, toHex, zeroize } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { ROUTES, type ChallengeRequest, type CompleteRequest, type ConfirmSession, type Inventory, type JoinTicket, type Role } from '../../protocol/messages.js';
import { generateEphemeralKey, open, qualifyingData, sealContext } from '../../protocol/seal.js';
import {
  assertChallengeResponse,
  assertCompleteResponse,
  assertReleasedSecrets,
  NODE_NAME_RE,
  UUID_RE,
} from '../../protocol/validate.js';
import { withRetries, type BackoffOptions } from './backoff.js';
import { verifyKeyService, type VerifiedKeyService } from './service-check.js';
import type { ServiceVerifierOptions } from '../../attestation/tpm/verify-service.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import { eventLogEvidence, produceIdentity, produceQuote } from '../../attestation/tpm/produce.js';
import type { SnpEvidenceSource } from './snp-evidence.js';
import { Endpoints, describeFailover } from './failover.js';
import { isFinalRefusal, PinnedClient, type PinnedEndpoint } from './transport.js';

/**
 * The agent's side of the protocol: [the key service's own attestation, when asked] -> round 1 (EK cert + AK public -> credential
 * challenge and the nonce) -> round 2 (activated credential + quote bound to nonce and ephemeral key ->
 * sealed secrets). A refusal by the service is final; transport trouble is retried with
 * exponential backoff and jitter, each attempt from a fresh nonce and ephemeral key.
 */

export interface AttestRequest {
  /** One key service, or several replicas to fail over between (agent/attest/failover.ts). */
  endpoint: PinnedEndpoint | Endpoints;
  diskUuid: string;
  role: Role;
  nodeName: string;
  csr?: string;
  eventLog?: Uint8Array;
  inventory?: Inventory;
  /** An SNP attestation variant: the CPU's evidence, sent with round 2 (agent/attest/snp-evidence.ts). */
  snp?: SnpEvidenceSource;
  /** Mutual attestation: what to trust in the key service's own quote, checked before sending any evidence. */
  verifyService?: ServiceVerifierOptions;
  retry?: Partial<BackoffOptions>;
  log?: (line: string) => void;
}

export interface AttestResult {
  /** The state disk's key: the caller zeroizes it once the disk is open. */
  diskKey: Buffer;
  clusterId: string;
  joinTicket?: JoinTicket;
  /** For confirmLock (agent/attest/confirm.ts) once PCR 15 holds the lock. */
  confirm?: ConfirmSession;
  warnings: string[];
  /** What the key service proved about itself (mutual attestation only). */
  service?: VerifiedKeyService;
  attempts: number;
  /** The URL of the key service endpoint that answered. */
  endpoint: string;
}

async function attestOnce(tpm: AttestationTpm, r: AttestRequest & { endpoint: PinnedEndpoint }): Promise<Omit<AttestResult, 'attempts' | 'endpoint'>> {
  const service = r.verifyService ? await verifyKeyService(r.endpoint, r.verifyService) : undefined;
  if (service) r.log?.(`attest: key service attested (${service.measurements})`);
  // Both rounds on one kept-alive connection; the nonce comes with the challenge.
  const conn = new PinnedClient(r.endpoint);
  try {
    return await rounds(tpm, r, conn, service);
  } finally {
    conn.close();
  }
}

async function rounds(tpm: AttestationTpm, r: AttestRequest, conn: PinnedClient, service: VerifiedKeyService | undefined): Promise<Omit<AttestResult, 'attempts' | 'endpoint'>> {
  const round1: ChallengeRequest = { v: 1, ...(await produceIdentity(tpm)), withNonce: true };
  const akPublic = Buffer.from(round1.akPublic, 'base64');
  const challenge = await conn.post(ROUTES.challenge, round1);
  assertChallengeResponse(challenge);
  if (challenge.nonce === undefined) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the key service sent no nonce with the challenge' });
  const nonce = Buffer.from(challenge.nonce, 'base64');
  const credential = Buffer.from(
    await tpm.activateCredential(Buffer.from(challenge.credentialBlob, 'base64'), Buffer.from(challenge.encryptedSecret, 'base64')),
  );

  const snp = r.snp ? await r.snp.collect({ nonce, akPublic }) : undefined;
  const eph = generateEphemeralKey();
  try {
    const quote = await produceQuote(tpm, qualifyingData(nonce, eph.publicKey));
    const round2: CompleteRequest = {
      v: 1,
      sessionId: challenge.sessionId,
      activatedCredential: credential.toString('base64'),
      nonce: challenge.nonce,
      ephemeralPublicKey: eph.publicKey.toString('base64'),
      ...quote,
      ...eventLogEvidence(r.eventLog),
      diskUuid: r.diskUuid,
      role: r.role,
      nodeName: r.nodeName,
      csr: r.csr,
      inventory: r.inventory,
      snp,
    };
    const answer = await conn.post(ROUTES.complete, round2);
    assertCompleteResponse(answer);
    const plain = open(answer.sealed, eph, sealContext(challenge.sessionId, nonce, eph.publicKey));
    try {
      let secrets: unknown;
      try {
        secrets = JSON.parse(plain.toString('utf8'));
      } catch {
        throw new SextantError({ code: 'SEAL_INVALID', message: 'sealed answer is not JSON' });
      }
      assertReleasedSecrets(secrets);
      return { diskKey: Buffer.from(secrets.diskKey, 'base64'), clusterId: secrets.clusterId, joinTicket: secrets.joinTicket, confirm: secrets.confirm, warnings: answer.warnings, service };
    } finally {
      zeroize(plain);
    }
  } finally {
    // `eph`'s private key cannot be wiped (it is inside OpenSSL); it goes with the object.
    zeroize(credential);
  }
}

/** The agent's retry policy for an attestation: transport trouble and busy answers are retried, refusals are final. */
export const ATTEST_RETRY: Omit<BackoffOptions, 'random'> = { attempts: 5, baseMs: 500, capMs: 15_000 };

export async function attest(tpm: AttestationTpm, r: AttestRequest): Promise<AttestResult> {
  if (!UUID_RE.test(r.diskUuid)) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `disk UUID must be a lowercase UUID, got "${r.diskUuid}"` });
  if (!NODE_NAME_RE.test(r.nodeName)) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `node name must be a DNS-1123 label, got "${r.nodeName}"` });
  const endpoints = Endpoints.of(r.endpoint);
  let attempts = 0;
  const { value: result, endpoint } = await withRetries(
    async () => {
      attempts++;
      return endpoints.round((ep) => attestOnce(tpm, { ...r, endpoint: ep }), (from, to, e) => r.log?.(`attest: ${describeFailover(from, to, e)}`));
    },
    (e) => !isFinalRefusal(e),
    { ...ATTEST_RETRY, ...r.retry },
    (e, n, d) => r.log?.(`attest: attempt ${n + 1} failed (${e instanceof SextantError ? e.code : String(e)}); retrying in ${d} ms`),
  );
  return { ...result, attempts, endpoint: endpoint.url };
}

/** What may be printed: SHA-256 of each secret, never the secret. */
export function describeResult(r: AttestResult): Record<string, unknown> {
  return {
    diskKeySha256: toHex(hash('sha256', r.diskKey)),
    clusterId: r.clusterId,
    joinTicket: r.joinTicket && {
      apiServerEndpoint: r.joinTicket.apiServerEndpoint,
      tokenId: r.joinTicket.token.split('.')[0],
      tokenSha256: toHex(hash('sha256', Buffer.from(r.joinTicket.token))),
      tokenExpiresAt: r.joinTicket.tokenExpiresAt,
      caCertHash: r.joinTicket.caCertHash,
      kubeletCertIssued: r.joinTicket.kubeletCert !== undefined,
    },
    confirmExpiresAt: r.confirm?.expiresAt,
    keyserviceAttested: r.service ? { measurements: r.service.measurements, akName: r.service.akName, warnings: r.service.warnings } : undefined,
    warnings: r.warnings,
    attempts: r.attempts,
    keyservice: r.endpoint,
  };
}
