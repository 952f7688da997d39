import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { p256Problem } from '../format/signature.js';

/** Loads an ECDSA P-256 public key from PEM (SubjectPublicKeyInfo); anything else is KEY_INVALID. */
export function loadVerificationKey(pem: Uint8Array | string): KeyObject {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1');
  if (text.includes('PRIVATE KEY-----')) {
    throw new SextantError({ code: 'KEY_INVALID', message: 'expected a public key, got a private key (openssl pkey -pubout makes the public one)' });
  }
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new SextantError({ code: 'KEY_INVALID', message: 'expected a PEM public key (BEGIN PUBLIC KEY)' });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (e) {
    throw new SextantError({ code: 'KEY_INVALID', message: `cannot read the public key (${(e as Error).message})`, cause: e });
  }
  const problem = p256Problem(key);
  if (problem) throw new SextantError({ code: 'KEY_INVALID', message: problem });
  return key;
}

/** `sha256:<hex>` of the key's DER SubjectPublicKeyInfo: what a user compares to know which key it was. */
export function keyFingerprint(key: KeyObject): string {
  const spki = key.export({ format: 'der', type: 'spki' });
  return 'sha256:' + createHash('sha256').update(spki).digest('hex');
}
