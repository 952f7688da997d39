import { createHash, verify, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { SIGNATURE_HASH, decodeSignature, encodeSignature, p256Problem } from '../format/signature.js';
import { looksLikeBundle, parseSigstoreBundle } from '../format/sigstore-bundle.js';

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
 * Checks a cosign-sign-blob style signature of exact bytes: either cosign's detached
 * signature (base64 DER ECDSA P-256 over SHA-256, what `sextant measurements sign` and cosign
 * 2 write) or a Sigstore bundle with a key-based message signature (what cosign 3 writes with
 * `--bundle`), whose stated digest must be the bytes' SHA-256 and whose key hint, when
 * present, must name `key`. Returns nothing; throws SignatureInvalidError or KEY_INVALID.
 */
export function verifyBlob(bytes: Uint8Array, signature: string | Uint8Array, key: KeyObject): void {
  const problem = key.type === 'public' ? p256Problem(key) : 'expected a public key';
  if (problem) throw new SextantError({ code: 'KEY_INVALID', message: problem });
  let text = typeof signature === 'string' ? signature : Buffer.from(signature).toString('latin1');
  if (looksLikeBundle(text)) text = bundleSignature(bytes, text, key);
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

/** The bundle's signature as cosign's base64 text, after its digest and key hint are checked. */
function bundleSignature(bytes: Uint8Array, text: string, key: KeyObject): string {
  let bundle;
  try {
    bundle = parseSigstoreBundle(text);
  } catch (e) {
    throw new SignatureInvalidError('malformed', (e as Error).message);
  }
  if (!bundle.digest.equals(createHash('sha256').update(bytes).digest())) {
    throw new SignatureInvalidError('mismatch', 'the sigstore bundle signs other bytes: the file was changed');
  }
  const spkiHash = createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest('base64');
  if (bundle.keyHint !== undefined && bundle.keyHint !== spkiHash) {
    throw new SignatureInvalidError('mismatch', 'the sigstore bundle names another signing key (publicKey.hint)');
  }
  return encodeSignature(bundle.signature);
}
