import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { ROUTES, type ServiceActivateRequest, type ServiceAttestRequest } from '../../protocol/messages.js';
import { serviceQualifyingData } from '../../protocol/seal.js';
import { verifyServiceEvidence, type ServiceVerifierOptions } from '../../attestation/tpm/verify-service.js';
import { assertServiceActivateResponse, assertServiceAttestResponse } from '../../protocol/validate.js';
import { normalizeFingerprint, postJson, type PinnedEndpoint } from './transport.js';

/**
 * Mutual attestation, the agent's side: before it sends any evidence of its own, the agent
 * makes the key service prove what it runs.
 *
 *   1. POST /v1/service/attest {nonce}: the service's EK certificate, AK public and a quote of
 *      its PCRs over SHA-256(tag || nonce || SHA-256 of the TLS certificate this connection
 *      presented); attestation/tpm/verify-service.ts checks it with the stages the key
 *      service runs on nodes.
 *   2. POST /v1/service/activate: TPM2_MakeCredential to that EK for that AK with a fresh
 *      secret; only the TPM holding both returns it (the AK really is the EK's TPM's).
 *
 * The TLS certificate is the pinned one (transport.ts refuses any other before sending), so a
 * quote another server relays carries the wrong certificate hash and does not verify.
 */

export interface VerifiedKeyService {
  measurements: string;
  akName: string;
  warnings: string[];
}

export async function verifyKeyService(endpoint: PinnedEndpoint, trust: ServiceVerifierOptions): Promise<VerifiedKeyService> {
  const nonce = randomBytes(32);
  const certSha256 = Buffer.from(normalizeFingerprint(endpoint.fingerprint).slice('sha256:'.length), 'hex');
  const req: ServiceAttestRequest = { v: 1, nonce: nonce.toString('base64') };
  const evidence = await postJson(endpoint, ROUTES.serviceAttest, req);
  try {
    assertServiceAttestResponse(evidence);
  } catch (cause) {
    throw new SextantError({ code: 'KEYSERVICE_QUOTE_INVALID', message: `key service attestation is malformed: ${(cause as Error).message}`, cause });
  }
  const verified = verifyServiceEvidence(trust, evidence, serviceQualifyingData(nonce, certSha256));

  const secret = randomBytes(32);
  const challenge = verified.makeCredential(secret);
  const act: ServiceActivateRequest = { v: 1, credentialBlob: Buffer.from(challenge.credentialBlob).toString('base64'), encryptedSecret: Buffer.from(challenge.encryptedSecret).toString('base64') };
  let got: Buffer;
  try {
    const r = await postJson(endpoint, ROUTES.serviceActivate, act);
    assertServiceActivateResponse(r);
    got = Buffer.from(r.credential, 'base64');
  } catch (cause) {
    if (cause instanceof SextantError && ['KEYSERVICE_UNREACHABLE', 'RATE_LIMITED', 'TIMEOUT', 'INTERNAL'].includes(cause.code)) throw cause;
    throw new SextantError({ code: 'KEYSERVICE_AK_NOT_BOUND', message: `the key service could not activate a credential for its AK: ${(cause as Error).message}`, cause });
  }
  if (got.length !== secret.length || !timingSafeEqual(got, secret)) {
    throw new SextantError({ code: 'KEYSERVICE_AK_NOT_BOUND', message: "the key service's AK is not in the TPM of its EK certificate (credential activation failed)" });
  }
  return { measurements: verified.measurements, akName: verified.akName, warnings: verified.warnings };
}
