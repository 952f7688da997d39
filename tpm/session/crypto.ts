/**
 * The arithmetic of authorization sessions (TPM 2.0 Part 1 §19.6, §21), pure functions so
 * they can be checked against published vectors and against a TPM:
 *  - session key: KDFa(authHash, bind.authValue || salt, "ATH", nonceTPM, nonceCaller) (§19.6.8)
 *  - cpHash = H(commandCode || Name of every handle || parameters) (§18.7),
 *    rpHash = H(responseCode || commandCode || parameters) (§18.8)
 *  - HMAC = HMAC(sessionKey || authValue, pHash || nonceNewer || nonceOlder || nonceDecrypt
 *    || nonceEncrypt || sessionAttributes) (§19.6.5, §19.6.10)
 *  - parameter encryption, AES-CFB: key and IV from KDFa(authHash, sessionKey || authValue,
 *    "CFB", nonceNewer, nonceOlder, keyBits + 128) (§21.3); only the data of the first
 *    parameter, a TPM2B, is encrypted, never its size.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { DIGEST_SIZE, type HashAlg, zeroize } from '../../lib/bytes.js';
import { kdfa } from '../credential/kdf.js';

/** TPMA_SESSION (Part 2 §8.4). */
export const TPMA_SESSION = {
  continueSession: 0x01,
  auditExclusive: 0x02,
  auditReset: 0x04,
  decrypt: 0x20,
  encrypt: 0x40,
  audit: 0x80,
} as const;

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** The session key; empty for a session that is neither bound nor salted. */
export function sessionKey(alg: HashAlg, bindAuth: Uint8Array, salt: Uint8Array, nonceTPM: Uint8Array, nonceCaller: Uint8Array): Buffer {
  const key = Buffer.concat([bindAuth, salt]);
  try {
    return key.length === 0 ? Buffer.alloc(0) : kdfa(alg, key, 'ATH', nonceTPM, nonceCaller, DIGEST_SIZE[alg] * 8);
  } finally {
    zeroize(key);
  }
}

export function cpHash(alg: HashAlg, commandCode: number, names: readonly Uint8Array[], parameters: Uint8Array): Buffer {
  const h = createHash(alg).update(u32(commandCode));
  for (const n of names) h.update(n);
  return h.update(parameters).digest();
}

export function rpHash(alg: HashAlg, responseCode: number, commandCode: number, parameters: Uint8Array): Buffer {
  return createHash(alg).update(u32(responseCode)).update(u32(commandCode)).update(parameters).digest();
}

export interface HmacInput {
  /** sessionKey || authValue of the entity (authValue left out when the session is bound to it). */
  key: Uint8Array;
  pHash: Uint8Array;
  /** nonceCaller for a command, nonceTPM for a response. */
  nonceNewer: Uint8Array;
  nonceOlder: Uint8Array;
  /** nonceTPM of a decrypt / encrypt session that is not this one (first session only). */
  nonceDecrypt?: Uint8Array;
  nonceEncrypt?: Uint8Array;
  attributes: number;
}

export function sessionHmac(alg: HashAlg, i: HmacInput): Buffer {
  return createHmac(alg, i.key)
    .update(i.pHash)
    .update(i.nonceNewer)
    .update(i.nonceOlder)
    .update(i.nonceDecrypt ?? new Uint8Array(0))
    .update(i.nonceEncrypt ?? new Uint8Array(0))
    .update(Uint8Array.of(i.attributes))
    .digest();
}

/**
 * AES-128-CFB over `data` (a first parameter's bytes after its size). For a command
 * (decrypt attribute) nonceNewer is nonceCaller and nonceOlder nonceTPM; for a response
 * (encrypt attribute) the other way round.
 */
export function cfb(direction: 'encrypt' | 'decrypt', alg: HashAlg, key: Uint8Array, nonceNewer: Uint8Array, nonceOlder: Uint8Array, data: Uint8Array): Buffer {
  const material = kdfa(alg, key, 'CFB', nonceNewer, nonceOlder, 128 + 128);
  try {
    const args = ['aes-128-cfb', material.subarray(0, 16), material.subarray(16, 32)] as const;
    const cipher = direction === 'encrypt' ? createCipheriv(...args) : createDecipheriv(...args);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  } finally {
    zeroize(material);
  }
}
