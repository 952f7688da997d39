/**
 * TPMT_PUBLIC <-> node:crypto KeyObject (and PEM SubjectPublicKeyInfo), for RSA and NIST ECC
 * keys. Goes through JWK so no ASN.1 is written by hand.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { fail } from '../lib/errors.js';
import { algName, TPM_ALG, TPM_ECC_CURVE } from './constants.js';
import type { TpmtPublic } from './structures.js';

const CURVES: Record<number, { jwk: string; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { jwk: 'P-256', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { jwk: 'P-384', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { jwk: 'P-521', size: 66 },
};

const DEFAULT_RSA_EXPONENT = 65537;

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

/** Left-pads a big-endian integer to `size` bytes (TPMs may drop leading zero bytes). */
function padTo(b: Uint8Array, size: number): Uint8Array {
  if (b.length > size) fail('KEY_INVALID', `ECC coordinate of ${b.length} bytes is longer than ${size}`);
  const out = new Uint8Array(size);
  out.set(b, size - b.length);
  return out;
}

function exponentBytes(e: number): Uint8Array {
  const out: number[] = [];
  for (let v = e; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Uint8Array.from(out);
}

/** The public key of an RSA or ECC TPMT_PUBLIC as a KeyObject. */
export function publicKeyFromTpmt(pub: TpmtPublic): KeyObject {
  let jwk: JsonWebKey;
  switch (pub.type) {
    case TPM_ALG.RSA:
      if (pub.unique.length === 0) fail('KEY_INVALID', 'RSA public area has an empty modulus');
      jwk = {
        kty: 'RSA',
        n: b64u(pub.unique),
        e: b64u(exponentBytes(pub.parameters.exponent || DEFAULT_RSA_EXPONENT)),
      };
      break;
    case TPM_ALG.ECC: {
      const curve = CURVES[pub.parameters.curveID];
      if (!curve) fail('KEY_INVALID', `ECC curve 0x${pub.parameters.curveID.toString(16)} is not supported`);
      jwk = { kty: 'EC', crv: curve.jwk, x: b64u(padTo(pub.unique.x, curve.size)), y: b64u(padTo(pub.unique.y, curve.size)) };
      break;
    }
    case TPM_ALG.KEYEDHASH:
    case TPM_ALG.SYMCIPHER:
      return fail('KEY_INVALID', `a ${algName(pub.type)} object has no public key`);
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    return fail('KEY_INVALID', `public area does not hold a valid ${algName(pub.type)} key`, e);
  }
}

/** PEM SubjectPublicKeyInfo of a TPMT_PUBLIC (what `tpm2_checkquote -u` and openssl read). */
export function publicKeyPem(pub: TpmtPublic): string {
  return publicKeyFromTpmt(pub).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * Puts a software public key into a template's `unique` field (and RSA exponent / key size,
 * ECC curve), e.g. to make an EK public from a known key. Key type must match the template.
 */
export function tpmtWithPublicKey<T extends TpmtPublic>(template: T, key: KeyObject): T {
  const jwk = key.export({ format: 'jwk' });
  if (template.type === TPM_ALG.RSA) {
    if (jwk.kty !== 'RSA' || !jwk.n || !jwk.e) fail('KEY_INVALID', 'template is RSA but the key is not');
    const n = Buffer.from(jwk.n, 'base64url');
    const e = Number(BigInt('0x' + Buffer.from(jwk.e, 'base64url').toString('hex')));
    return {
      ...template,
      parameters: { ...template.parameters, keyBits: n.length * 8, exponent: e === DEFAULT_RSA_EXPONENT ? 0 : e },
      unique: Uint8Array.from(n),
    };
  }
  if (template.type === TPM_ALG.ECC) {
    const entry = Object.entries(CURVES).find(([, c]) => c.jwk === jwk.crv);
    if (jwk.kty !== 'EC' || !entry || !jwk.x || !jwk.y) fail('KEY_INVALID', 'template is ECC but the key is not a NIST curve key');
    return {
      ...template,
      parameters: { ...template.parameters, curveID: Number(entry[0]) },
      unique: { x: Uint8Array.from(Buffer.from(jwk.x, 'base64url')), y: Uint8Array.from(Buffer.from(jwk.y, 'base64url')) },
    };
  }
  return fail('KEY_INVALID', `cannot put a key into a ${algName(template.type)} template`);
}
