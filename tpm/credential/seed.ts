/**
 * Secret sharing with a TPM key (Part 1 §24.4, "secret sharing" / labeled encapsulation):
 * a fresh seed the TPM can recover only with the private part of `key`.
 *  - RSA: seed = random(digest size of nameAlg), sent as RSA-OAEP(nameAlg, label + NUL).
 *  - ECC: one-pass Diffie-Hellman with an ephemeral key on the same curve; the seed is
 *    KDFe(nameAlg, Z, label, ephemeral.x, key.x, digest bits); the ephemeral point is sent.
 * Used with label "IDENTITY" by MakeCredential (and "DUPLICATE" / "SECRET" elsewhere).
 */
import {
  constants,
  createECDH,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { DIGEST_SIZE, type HashAlg, zeroize } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import { marshal, unmarshal } from '../codec.js';
import { algName, hashAlgName, TPM_ALG, TPM_ECC_CURVE } from '../constants.js';
import { publicKeyFromTpmt } from '../public-key.js';
import { TPMS_ECC_POINT, type TpmtPublic } from '../structures.js';
import { kdfe } from './kdf.js';

const CURVE_NAMES: Record<number, { node: string; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { node: 'prime256v1', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { node: 'secp384r1', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { node: 'secp521r1', size: 66 },
};

export interface SharedSeed {
  /** The seed in clear: zeroize it once the keys are derived. */
  seed: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents: OAEP ciphertext, or the marshalled ephemeral TPMS_ECC_POINT. */
  encryptedSecret: Uint8Array;
}

/** Test hooks for known-answer tests; production callers pass nothing. */
export interface SeedOptions {
  /** RSA: the seed to encrypt instead of a random one. */
  seed?: Uint8Array;
  /** ECC: the ephemeral private key instead of a fresh one. */
  ephemeralPrivateKey?: KeyObject;
  /** `key`'s public key as a KeyObject, when the caller has it already (saves its import). */
  publicKey?: KeyObject;
}

export function nameAlgOf(key: TpmtPublic): HashAlg {
  return hashAlgName(key.nameAlg) ?? fail('KEY_INVALID', `nameAlg ${algName(key.nameAlg)} is not a supported hash`);
}

function eccCurve(key: TpmtPublic & { type: typeof TPM_ALG.ECC }) {
  return CURVE_NAMES[key.parameters.curveID] ?? fail('KEY_INVALID', `ECC curve 0x${key.parameters.curveID.toString(16)} is not supported`);
}

/** An ECC private KeyObject from its raw scalar (for known-answer tests). */
export function eccPrivateKeyFromScalar(curveId: number, d: Uint8Array): KeyObject {
  const curve = CURVE_NAMES[curveId] ?? fail('KEY_INVALID', `ECC curve 0x${curveId.toString(16)} is not supported`);
  const ecdh = createECDH(curve.node);
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const crv = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[curve.node];
  return createPrivateKey({
    key: { kty: 'EC', crv, d: b64(d), x: b64(pub.subarray(1, 1 + curve.size)), y: b64(pub.subarray(1 + curve.size)) },
    format: 'jwk',
  });
}

/** Makes a seed only the holder of `key`'s private part can recover. */
export function encryptSeed(key: TpmtPublic, label: string, opts: SeedOptions = {}): SharedSeed {
  const alg = nameAlgOf(key);
  const oaepLabel = Buffer.from(label + '\0', 'latin1');
  switch (key.type) {
    case TPM_ALG.RSA: {
      const seed = Buffer.from(opts.seed ?? randomBytes(DIGEST_SIZE[alg]));
      const encryptedSecret = publicEncrypt(
        { key: opts.publicKey ?? publicKeyFromTpmt(key), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg, oaepLabel },
        seed,
      );
      return { seed, encryptedSecret };
    }
    case TPM_ALG.ECC: {
      const curve = eccCurve(key);
      const ephemeral =
        opts.ephemeralPrivateKey ?? generateKeyPairSync('ec', { namedCurve: curve.node }).privateKey;
      const jwk = createPublicKey(ephemeral).export({ format: 'jwk' });
      const x = Buffer.from(jwk.x ?? '', 'base64url');
      const y = Buffer.from(jwk.y ?? '', 'base64url');
      const z = diffieHellman({ privateKey: ephemeral, publicKey: opts.publicKey ?? publicKeyFromTpmt(key) });
      try {
        const seed = kdfe(alg, z, label, x, key.unique.x, DIGEST_SIZE[alg] * 8);
        return { seed, encryptedSecret: marshal(TPMS_ECC_POINT, { x, y }) };
      } finally {
        zeroize(z);
      }
    }
    case TPM_ALG.KEYEDHASH:
    case TPM_ALG.SYMCIPHER:
      return fail('KEY_INVALID', `cannot share a secret with a ${algName(key.type)} key`);
  }
}

/**
 * The inverse with the private key in software (what the TPM does inside ActivateCredential):
 * used to check encryptSeed and tpm2-tools against each other with software keys.
 */
export function decryptSeed(key: TpmtPublic, privateKey: KeyObject, label: string, encryptedSecret: Uint8Array): Buffer {
  const alg = nameAlgOf(key);
  switch (key.type) {
    case TPM_ALG.RSA:
      try {
        return privateDecrypt(
          {
            key: privateKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: alg,
            oaepLabel: Buffer.from(label + '\0', 'latin1'),
          },
          encryptedSecret,
        );
      } catch (e) {
        return fail('CREDENTIAL_ACTIVATION_FAILED', 'the encrypted seed does not decrypt with this key', e);
      }
    case TPM_ALG.ECC: {
      const curve = eccCurve(key);
      const point = unmarshal(TPMS_ECC_POINT, encryptedSecret);
      const ephemeral = publicKeyFromTpmt({ ...key, unique: point });
      const z = diffieHellman({ privateKey, publicKey: ephemeral });
      try {
        if (z.length !== curve.size) fail('CREDENTIAL_ACTIVATION_FAILED', 'unexpected ECDH secret size');
        return kdfe(alg, z, label, point.x, key.unique.x, DIGEST_SIZE[alg] * 8);
      } finally {
        zeroize(z);
      }
    }
    case TPM_ALG.KEYEDHASH:
    case TPM_ALG.SYMCIPHER:
      return fail('KEY_INVALID', `cannot share a secret with a ${algName(key.type)} key`);
  }
}
