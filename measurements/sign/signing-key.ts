import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { p256Problem } from '../format/signature.js';

/**
 * Loads an ECDSA P-256 private key from PEM (PKCS#8, SEC1 "EC PRIVATE KEY" with or without
 * an "EC PARAMETERS" block, or encrypted PKCS#8 with `passphrase`). Anything else is
 * KEY_INVALID. The caller owns `pem` and should zeroize it afterwards.
 */
export function loadSigningKey(pem: Uint8Array, passphrase?: string): KeyObject {
  const text = Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength);
  if (!text.includes('PRIVATE KEY-----')) {
    throw new SextantError({ code: 'KEY_INVALID', message: 'expected a PEM private key (BEGIN ... PRIVATE KEY)' });
  }
  if (text.includes('ENCRYPTED') && passphrase === undefined) {
    throw new SextantError({ code: 'KEY_INVALID', message: 'the private key is encrypted: give its passphrase (SEXTANT_KEY_PASSPHRASE)' });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem', passphrase });
  } catch (e) {
    throw new SextantError({ code: 'KEY_INVALID', message: `cannot read the private key (${(e as Error).message})`, cause: e });
  }
  const problem = p256Problem(key);
  if (problem) throw new SextantError({ code: 'KEY_INVALID', message: problem });
  return key;
}
