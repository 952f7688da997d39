import { verify, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { SIGNATURE_HASH, decodeSignature, p256Problem } from '../format/signature.js';

/** Why a signature did not verify: unreadable signature vs. a signature that does not match. */
export type SignatureFailure = 'malformed' | 'mismatch';

/** SIGNATURE_INVALID with the reason, so callers (and tests) tell a bad file from a wrong key. */
export class SignatureInvalidError extends SextantError {
  readonly reason: SignatureFailure;

  constructor(reason: SignatureFailure, message: string) {
    super({ code: 'SIGNATURE_INVALID', message });
    this.reason = reason;
  }
}

/**
 * Checks a cosign-sign-blob style signature (base64 DER ECDSA P-256 over SHA-256) of exact
 * bytes. Returns nothing; throws SignatureInvalidError or KEY_INVALID.
 */
export function verifyBlob(bytes: Uint8Array, signature: string | Uint8Array, key: KeyObject): void {
  const problem = key.type === 'public' ? p256Problem(key) : 'expected a public key';
  if (problem) throw new SextantError({ code: 'KEY_INVALID', message: problem });
  const text = typeof signature === 'string' ? signature : Buffer.from(signature).toString('latin1');
  const decoded = decodeSignature(text);
  if ('problem' in decoded) throw new SignatureInvalidError('malformed', decoded.problem);
  let ok: boolean;
  try {
    ok = verify(SIGNATURE_HASH, bytes, { key, dsaEncoding: 'der' }, decoded.der);
  } catch (e) {
    throw new SignatureInvalidError('malformed', `the signature could not be checked (${(e as Error).message})`);
  }
  if (!ok) {
    throw new SignatureInvalidError('mismatch', 'the signature does not match: the file was changed or was signed with another key');
  }
}
