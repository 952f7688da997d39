import { sign, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { SIGNATURE_HASH, encodeSignature, p256Problem } from '../format/signature.js';

/** Signs exact bytes: base64 of a DER ECDSA P-256 signature over their SHA-256 (cosign sign-blob). */
export function signBlob(bytes: Uint8Array, key: KeyObject): string {
  const problem = key.type === 'private' ? p256Problem(key) : 'expected a private key';
  if (problem) throw new SextantError({ code: 'KEY_INVALID', message: problem });
  return encodeSignature(sign(SIGNATURE_HASH, bytes, { key, dsaEncoding: 'der' }));
}
