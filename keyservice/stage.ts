import { isSextantError } from '../lib/errors.js';
import { StageError } from '../attestation/stage.js';
import type { AuditLog } from './audit/log.js';

/** The most of a refusal's message the audit record keeps (messages can quote request fields). */
export const MAX_AUDIT_REASON = 512;

function reason(message: string): string {
  return message.length > MAX_AUDIT_REASON ? message.slice(0, MAX_AUDIT_REASON) + '…' : message;
}

/** Audits a refusal and returns the error to throw (its code is what the agent sees). */
export async function auditRefusal(audit: Pick<AuditLog, 'append'>, e: unknown, facts: Record<string, unknown>, fallbackStage: string): Promise<unknown> {
  if (e instanceof StageError) {
    await audit.append({ decision: 'refuse', stage: e.stage, code: e.error.code, reason: reason(e.error.message), ...facts });
    return e.error;
  }
  if (isSextantError(e)) {
    await audit.append({ decision: 'refuse', stage: fallbackStage, code: e.code, reason: reason(e.message), ...facts });
  }
  return e;
}
