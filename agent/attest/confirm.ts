import { SextantError } from '../../lib/errors.js';
import { ROUTES, type ConfirmRequest, type ConfirmSession } from '../../protocol/messages.js';
import { confirmQualifyingData } from '../../protocol/seal.js';
import { assertConfirmResponse, assertNonceResponse } from '../../protocol/validate.js';
import { Endpoints, describeFailover } from './failover.js';
import { withRetries, type BackoffOptions } from './backoff.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import { isFinalRefusal, postJson, type PinnedEndpoint } from './transport.js';

/**
 * The agent's side of the post-lock confirm round: after TPM2_PCR_Event(15, clusterId), a
 * fresh quote with the same AK over the same PCRs shows the key service that the node really
 * locked itself to the cluster (and changed nothing else). The service audits it as
 * `lock-confirmed` with every quoted PCR value.
 */

export interface ConfirmResult {
  clusterId: string;
  /** PCR 15 as quoted and verified: H(0^32 || H(clusterID)). */
  pcr15: string;
  attempts: number;
}

export interface ConfirmOptions {
  retry?: Partial<BackoffOptions>;
  log?: (line: string) => void;
}

async function confirmOnce(tpm: Pick<AttestationTpm, 'quote'>, endpoint: PinnedEndpoint, session: ConfirmSession): Promise<Omit<ConfirmResult, 'attempts'>> {
  const n = await postJson(endpoint, ROUTES.nonce, {});
  assertNonceResponse(n);
  const q = await tpm.quote(confirmQualifyingData(session.id, Buffer.from(n.nonce, 'base64')));
  const req: ConfirmRequest = {
    v: 1,
    confirmId: session.id,
    nonce: n.nonce,
    quoteAttest: Buffer.from(q.attest).toString('base64'),
    quoteSignature: Buffer.from(q.signature).toString('base64'),
    pcrs: q.pcrs,
  };
  const r = await postJson(endpoint, ROUTES.confirm, req);
  assertConfirmResponse(r);
  return { clusterId: r.clusterId, pcr15: r.pcr15 };
}

/** Proves the PCR 15 lock to the key service; `session` is AttestResult.confirm. */
export async function confirmLock(tpm: Pick<AttestationTpm, 'quote'>, endpoint: PinnedEndpoint | Endpoints, session: ConfirmSession | undefined, o: ConfirmOptions = {}): Promise<ConfirmResult> {
  if (!session) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the key service released no confirm session (older service?)' });
  // Starts at the endpoint that released the key: with a local store only it knows the session.
  const endpoints = Endpoints.of(endpoint);
  let attempts = 0;
  const r = await withRetries(
    async () => {
      attempts++;
      return (await endpoints.round((ep) => confirmOnce(tpm, ep, session), (from, to, e) => o.log?.(`confirm: ${describeFailover(from, to, e)}`))).value;
    },
    (e) => !isFinalRefusal(e),
    { attempts: 5, baseMs: 500, capMs: 15_000, ...o.retry },
    (e, n, d) => o.log?.(`confirm: attempt ${n + 1} failed (${e instanceof SextantError ? e.code : String(e)}); retrying in ${d} ms`),
  );
  return { ...r, attempts };
}
