import { SextantError, isSextantError, type SextantErrorCode } from '../lib/errors.js';
import type { AuditLog } from './audit/log.js';

/** A stage name and its failure, so the audit log says where a node was refused. */
export class StageError extends Error {
  constructor(
    readonly stage: string,
    readonly error: SextantError,
  ) {
    super(error.message);
  }
}

/** Runs one named verifier stage; its SextantError is tagged with the stage's name. */
export function stage<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (isSextantError(e)) throw new StageError(name, e);
    throw e;
  }
}

/** stage() for an asynchronous step (a store round trip). */
export async function stageAsync<T>(name: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isSextantError(e)) throw new StageError(name, e);
    throw e;
  }
}

/** Malformed TPM structures inside a well-formed message count as the stage's own failure. */
export function asInputError(code: SextantErrorCode, what: string) {
  return (e: unknown): never => {
    if (isSextantError(e) && (e.code === 'TPM_UNMARSHAL' || e.code === 'PROTOCOL_INVALID')) {
      throw new SextantError({ code, message: `${what}: ${e.message}`, cause: e });
    }
    throw e;
  };
}

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
