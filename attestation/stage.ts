import { SextantError, isSextantError, type SextantErrorCode } from '../lib/errors.js';

/** A stage name and its failure, so a refusal (and the audit log) says where evidence failed. */
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

/** Malformed TPM structures inside a well-formed message count as the stage's own failure. */
export function asInputError(code: SextantErrorCode, what: string) {
  return (e: unknown): never => {
    if (isSextantError(e) && (e.code === 'TPM_UNMARSHAL' || e.code === 'PROTOCOL_INVALID')) {
      throw new SextantError({ code, message: `${what}: ${e.message}`, cause: e });
    }
    throw e;
  };
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
