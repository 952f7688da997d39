/**
 * The agent's protocol run step by step, with knobs to compose attacks from real pieces
 * (real swtpm evidence, real HTTPS). Returns the opened secrets or throws the service's
 * refusal as a SextantError.
 */
import { randomBytes } from 'node:crypto';
import { postJson, type PinnedEndpoint } from '../../agent/attest/transport.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import { ROUTES, type CompleteRequest, type ReleasedSecrets, type Role } from '../../protocol/messages.js';
import { generateEphemeralKey, open, qualifyingData, sealContext } from '../../protocol/seal.js';
import { assertChallengeResponse, assertCompleteResponse, assertNonceResponse, assertReleasedSecrets } from '../../protocol/validate.js';

export interface StepOptions {
  role?: Role;
  diskUuid?: string;
  nodeName?: string;
  csr?: string;
  eventLog?: Buffer;
  /** Use this nonce instead of asking for a fresh one. */
  nonce?: Buffer;
  /** Called right after the nonce is issued (e.g. to advance the service's clock). */
  afterNonce?: () => void | Promise<void>;
  /** The TPM whose EK certificate is sent (default: `tpm`). */
  ekFrom?: AttestationTpm;
  /** Quote with this function instead of tpm.quote (e.g. another AK). */
  quote?: (qualifyingData: Buffer) => Promise<{ attest: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> }>;
  /** When activation fails on this TPM, send a random credential instead of giving up. */
  guessCredentialOnFailure?: boolean;
  mutate?: (req: CompleteRequest) => CompleteRequest;
  /** Send these rounds to another replica than `ep` (any replica serves any round). */
  at?: { nonce?: PinnedEndpoint; challenge?: PinnedEndpoint; complete?: PinnedEndpoint };
  /** Awaited just before round 2 is sent (e.g. a barrier, so two agents send theirs at once). */
  beforeComplete?: () => Promise<void>;
}

export interface StepResult {
  secrets: ReleasedSecrets;
  warnings: string[];
  nonce: Buffer;
}

export async function attestSteps(ep: PinnedEndpoint, tpm: AttestationTpm, o: StepOptions = {}): Promise<StepResult> {
  let nonce = o.nonce;
  if (!nonce) {
    const n = await postJson(o.at?.nonce ?? ep, ROUTES.nonce, {});
    assertNonceResponse(n);
    nonce = Buffer.from(n.nonce, 'base64');
  }
  await o.afterNonce?.();
  const ch = await postJson(o.at?.challenge ?? ep, ROUTES.challenge, {
    v: 1,
    ekCert: Buffer.from(await (o.ekFrom ?? tpm).ekCertificate()).toString('base64'),
    akPublic: Buffer.from(await tpm.akPublic()).toString('base64'),
  });
  assertChallengeResponse(ch);
  let credential: Uint8Array;
  try {
    credential = await tpm.activateCredential(Buffer.from(ch.credentialBlob, 'base64'), Buffer.from(ch.encryptedSecret, 'base64'));
  } catch (e) {
    if (!o.guessCredentialOnFailure) throw e;
    credential = randomBytes(32);
  }
  const eph = generateEphemeralKey();
  const q = await (o.quote ?? ((d) => tpm.quote(d)))(qualifyingData(nonce, eph.publicKey));
  let req: CompleteRequest = {
    v: 1,
    sessionId: ch.sessionId,
    activatedCredential: Buffer.from(credential).toString('base64'),
    nonce: nonce.toString('base64'),
    ephemeralPublicKey: eph.publicKey.toString('base64'),
    quoteAttest: Buffer.from(q.attest).toString('base64'),
    quoteSignature: Buffer.from(q.signature).toString('base64'),
    pcrs: q.pcrs,
    eventLog: o.eventLog?.toString('base64'),
    diskUuid: o.diskUuid ?? '7d444840-9dc0-11d1-b245-5ffdce74fad2',
    role: o.role ?? 'join',
    nodeName: o.nodeName ?? 'worker-1',
    csr: o.csr,
  };
  if (o.mutate) req = o.mutate(req);
  await o.beforeComplete?.();
  const answer = await postJson(o.at?.complete ?? ep, ROUTES.complete, req);
  assertCompleteResponse(answer);
  const secrets = JSON.parse(open(answer.sealed, eph, sealContext(ch.sessionId, nonce, eph.publicKey)).toString('utf8')) as unknown;
  assertReleasedSecrets(secrets);
  return { secrets, warnings: answer.warnings, nonce };
}
