/**
 * TPM2_ActivateCredential's math (Part 3 §12.5) with the EK private key in software. A real EK
 * never leaves its TPM, so this only serves to check MakeCredential implementations (ours and
 * tpm2-tools') against each other with software keys, and to explain what the TPM checks:
 * a credential made for another EK fails the HMAC (TPM_RC_INTEGRITY), as does one made for
 * another AK Name.
 */
import { createDecipheriv, createHmac, type KeyObject } from 'node:crypto';
import { bytesEqual, DIGEST_SIZE, zeroize } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import { Reader, type Sized } from '../codec.js';
import { TPM2B_DIGEST, type TpmtPublic } from '../structures.js';
import { kdfa } from './kdf.js';
import { IDENTITY_LABEL, storageSymmetric, type Credential } from './make-credential.js';
import { decryptSeed, nameAlgOf } from './seed.js';

export interface SoftwareActivateInput extends Credential {
  ekPublic: TpmtPublic | Sized<TpmtPublic>;
  ekPrivateKey: KeyObject;
  akName: Uint8Array;
}

/** Recovers the secret; CREDENTIAL_ACTIVATION_FAILED when the blob is not for this EK and Name. */
export function activateCredentialInSoftware(input: SoftwareActivateInput): Buffer {
  const ek = 'value' in input.ekPublic ? input.ekPublic.value : input.ekPublic;
  const alg = nameAlgOf(ek);
  const keyBits = storageSymmetric(ek);
  const seed = decryptSeed(ek, input.ekPrivateKey, IDENTITY_LABEL, input.encryptedSecret);
  const hmacKey = kdfa(alg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), DIGEST_SIZE[alg] * 8);
  const symKey = kdfa(alg, seed, 'STORAGE', input.akName, new Uint8Array(0), keyBits);
  try {
    const r = new Reader(input.credentialBlob);
    const integrity = TPM2B_DIGEST.decode(r);
    const encIdentity = r.take(r.remaining);
    const expected = createHmac(alg, hmacKey).update(encIdentity).update(input.akName).digest();
    if (!bytesEqual(integrity, expected)) {
      fail('CREDENTIAL_ACTIVATION_FAILED', 'credential integrity check failed: made for another EK or another AK Name');
    }
    const decipher = createDecipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
    const plain = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
    try {
      const pr = new Reader(plain);
      const secret = Buffer.from(TPM2B_DIGEST.decode(pr));
      if (pr.remaining !== 0) fail('CREDENTIAL_ACTIVATION_FAILED', 'credential plaintext has trailing bytes');
      return secret;
    } finally {
      zeroize(plain);
    }
  } finally {
    zeroize(seed, hmacKey, symKey);
  }
}
