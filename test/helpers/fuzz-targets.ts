/**
 * The endpoints the fuzz campaigns attack, in-process: the key service's real request handler
 * (KeyServiceServer.answer, the production wiring from startKeyService: verifier, nonce store,
 * audit log) and the recovery endpoint's request layer (the bounded parser and the schemas
 * its handler runs; its HTTPS server is attacked in keyservice-fuzz-recovery.test.ts).
 */
import { stat } from 'node:fs/promises';
import { isSextantError, SextantError } from '../../lib/errors.js';
import { parseJsonBounded } from '../../lib/json-bounded.js';
import { ROUTES } from '../../protocol/messages.js';
import { RECOVERY_ROUTES } from '../../protocol/recovery-messages.js';
import { assertNonceRequest, assertRecoveryEvidenceRequest, assertRecoveryQuoteRequest, assertRecoveryReleaseRequest } from '../../protocol/validate.js';
import { errorAnswer } from '../../keyservice/server.js';
import type { RunningKeyService } from '../../keyservice/service.js';
import type { FuzzTarget } from './fuzz-campaign.js';
import { KEYSERVICE_SAMPLES, RECOVERY_SAMPLES } from './protocol-samples.js';

/** The most audit bytes one refused unauthenticated request may cost. */
export const MAX_AUDIT_BYTES_PER_REFUSAL = 1024;

function text(body: string | Buffer): string {
  return typeof body === 'string' ? body : body.toString('utf8');
}

export function validNonceBody(body: string | Buffer): boolean {
  try {
    assertNonceRequest(parseJsonBounded(text(body)));
    return true;
  } catch {
    return false;
  }
}

/** Every key service route against the in-process handler; `after` bounds the audit bytes of each answer. */
export function keyServiceTargets(svc: RunningKeyService): FuzzTarget[] {
  let auditSize = -1;
  const after = async (): Promise<string | undefined> => {
    const now = (await stat(svc.auditLog)).size;
    const grew = auditSize < 0 ? 0 : now - auditSize;
    auditSize = now;
    return grew > MAX_AUDIT_BYTES_PER_REFUSAL ? `one refusal wrote ${grew} audit bytes` : undefined;
  };
  return Object.entries(KEYSERVICE_SAMPLES).map(([route, sample]) => ({
    route,
    sample,
    send: (body) => svc.answer(route, body, '192.0.2.1'),
    mayAccept: (body) => route === ROUTES.nonce && validNonceBody(body),
    after,
  }));
}

const RECOVERY_CHECKS: Record<string, (x: unknown) => void> = {
  [RECOVERY_ROUTES.evidence]: assertRecoveryEvidenceRequest,
  [RECOVERY_ROUTES.quote]: assertRecoveryQuoteRequest,
  [RECOVERY_ROUTES.release]: assertRecoveryReleaseRequest,
};

/** True when a body passes the recovery route's parser and schema (what its handler then acts on). */
export function recoveryAccepts(route: string, body: string | Buffer): boolean {
  try {
    RECOVERY_CHECKS[route](parseJsonBounded(text(body)));
    return true;
  } catch {
    return false;
  }
}

/** The recovery routes' request layer: parse (bounded) + schema, as agent/recovery/server.ts runs them. */
export function recoveryRequestTargets(): FuzzTarget[] {
  return Object.entries(RECOVERY_SAMPLES).map(([route, sample]) => ({
    route,
    sample,
    send: async (body) => {
      try {
        RECOVERY_CHECKS[route](parseJsonBounded(text(body)));
        return { status: 200, body: { ok: true } };
      } catch (e) {
        return errorAnswer(isSextantError(e) ? e : new SextantError({ code: 'INTERNAL', message: String(e) }));
      }
    },
    // A body that passes the schema goes on to the TPM; here that is as far as it gets.
    mayAccept: (body) => recoveryAccepts(route, body),
  }));
}
