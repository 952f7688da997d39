/**
 * TPM2_MakeCredential in software (Part 3 §12.6, Part 1 §24): wraps a secret so that only the
 * TPM holding the EK's private key *and* a loaded object with the given Name (the AK) can
 * recover it with TPM2_ActivateCredential. The key service uses this to prove that the AK it
 * is shown lives in the same TPM as the EK its certificate vouches for.
 *
 *   seed          = secret sharing with the EK, label "IDENTITY" (seed.ts)
 *   symKey        = KDFa(nameAlg, seed, "STORAGE", akName, "", EK symmetric key bits)
 *   encIdentity   = AES-CFB(symKey, IV = 0, TPM2B_DIGEST(secret))
 *   hmacKey       = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)
 *   outerHMAC     = HMAC(nameAlg, hmacKey, encIdentity || akName)
 *   credentialBlob = TPM2B_DIGEST(outerHMAC) || encIdentity      (TPM2B_ID_OBJECT contents)
 */
import { createCipheriv, createHmac } from 'node:crypto';
import { DIGEST_SIZE, zeroize } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import { marshal, type Sized } from '../codec.js';
import { algName, TPM_ALG, TPMA_OBJECT } from '../constants.js';
import { TPM2B_DIGEST, type TpmtPublic } from '../structures.js';
import { kdfa } from './kdf.js';
import { encryptSeed, nameAlgOf, type SeedOptions } from './seed.js';

export interface MakeCredentialInput {
  /** The EK's public area (a decoded TPM2B_PUBLIC or a TPMT_PUBLIC). */
  ekPublic: TpmtPublic | Sized<TpmtPublic>;
  /** Name of the key that must be loaded to activate: the AK (nameAlg || H(AK public)). */
  akName: Uint8Array;
  /** The challenge, at most the digest size of the EK's nameAlg. */
  secret: Uint8Array;
}

export interface Credential {
  /** TPM2B_ID_OBJECT contents (marshal with TPM2B_ID_OBJECT for the wire). */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents. */
  encryptedSecret: Uint8Array;
}

/** Label strings of Part 1 §24; the NUL is appended by KDFa / OAEP. */
export const IDENTITY_LABEL = 'IDENTITY';

/** The AES key size and mode of a storage key, checked to be what ActivateCredential will use. */
export function storageSymmetric(ek: TpmtPublic): number {
  if (ek.type !== TPM_ALG.RSA && ek.type !== TPM_ALG.ECC) {
    return fail('KEY_INVALID', `an EK must be RSA or ECC, not ${algName(ek.type)}`);
  }
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((ek.objectAttributes & need) !== need) fail('KEY_INVALID', 'the EK is not a restricted decryption (storage) key');
  const sym = ek.parameters.symmetric;
  if (sym.algorithm !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB) {
    return fail('KEY_INVALID', `the EK's symmetric algorithm ${algName(sym.algorithm)} is not AES-CFB`);
  }
  return sym.keyBits;
}

export function makeCredential(input: MakeCredentialInput, opts: SeedOptions = {}): Credential {
  const ek = 'value' in input.ekPublic ? input.ekPublic.value : input.ekPublic;
  const alg = nameAlgOf(ek);
  const keyBits = storageSymmetric(ek);
  const digestSize = DIGEST_SIZE[alg];
  if (input.secret.length === 0 || input.secret.length > digestSize) {
    fail('INVALID_ARGUMENT', `a credential secret must be 1-${digestSize} bytes, got ${input.secret.length}`);
  }
  if (input.akName.length < 2 + 20) fail('INVALID_ARGUMENT', 'the AK Name is too short to be an object Name');

  const { seed, encryptedSecret } = encryptSeed(ek, IDENTITY_LABEL, opts);
  const symKey = kdfa(alg, seed, 'STORAGE', input.akName, new Uint8Array(0), keyBits);
  const hmacKey = kdfa(alg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), digestSize * 8);
  const plain = marshal(TPM2B_DIGEST, input.secret);
  try {
    const cipher = createCipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
    const encIdentity = Buffer.concat([cipher.update(plain), cipher.final()]);
    const outerHmac = createHmac(alg, hmacKey).update(encIdentity).update(input.akName).digest();
    const credentialBlob = Buffer.concat([marshal(TPM2B_DIGEST, outerHmac), encIdentity]);
    return { credentialBlob, encryptedSecret };
  } finally {
    zeroize(seed, symKey, hmacKey, plain);
  }
}
