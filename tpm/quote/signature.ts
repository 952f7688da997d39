/**
 * Checks a TPMT_SIGNATURE over a message with node:crypto: ECDSA (r, s as IEEE P1363),
 * RSASSA-PKCS1-v1_5 and RSA-PSS (any salt length, as TPMs differ).
 */
import { constants, verify, type KeyObject } from 'node:crypto';
import type { HashAlg } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import { algName, hashAlgName, TPM_ALG } from '../constants.js';
import type { TpmtPublic, TpmtSignature } from '../structures.js';

/** Field size in bytes by node:crypto curve name. */
const FIELD_BYTES: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

function leftPad(b: Uint8Array, size: number): Uint8Array | undefined {
  if (b.length > size) return undefined;
  const out = new Uint8Array(size);
  out.set(b, size - b.length);
  return out;
}

/** The key's own scheme, if it fixes one (a restricted signing key always does). */
function keyScheme(pub: TpmtPublic): { scheme: number; hashAlg?: number } {
  if (pub.type === TPM_ALG.RSA || pub.type === TPM_ALG.ECC) {
    const s = pub.parameters.scheme;
    return { scheme: s.scheme, hashAlg: 'hashAlg' in s ? s.hashAlg : undefined };
  }
  return { scheme: TPM_ALG.NULL };
}

/**
 * Verifies `sig` over `message` with `key` (the public key of `pub`); returns the signature's
 * hash algorithm. Throws QUOTE_SIGNATURE_INVALID.
 */
export function verifyAttestSignature(key: KeyObject, pub: TpmtPublic, message: Uint8Array, sig: TpmtSignature): HashAlg {
  const bad = (why: string): never => fail('QUOTE_SIGNATURE_INVALID', `quote signature invalid: ${why}`);
  if (sig.sigAlg === TPM_ALG.NULL) return bad('the signature is empty (TPM_ALG_NULL)');
  const hashAlg = hashAlgName(sig.hash) ?? bad(`unsupported hash ${algName(sig.hash)}`);
  const scheme = keyScheme(pub);
  if (scheme.scheme !== TPM_ALG.NULL && (scheme.scheme !== sig.sigAlg || scheme.hashAlg !== sig.hash)) {
    bad(`signed with ${algName(sig.sigAlg)}/${algName(sig.hash)} but the key's scheme is ${algName(scheme.scheme)}/${algName(scheme.hashAlg ?? 0)}`);
  }
  let ok: boolean;
  switch (sig.sigAlg) {
    case TPM_ALG.ECDSA: {
      if (key.asymmetricKeyType !== 'ec') return bad('ECDSA signature but the key is not ECC');
      const size = FIELD_BYTES[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? bad('unsupported ECC curve');
      const r = leftPad(sig.r, size);
      const s = leftPad(sig.s, size);
      if (!r || !s) return bad('ECDSA r or s is longer than the curve');
      ok = verify(hashAlg, message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
      break;
    }
    case TPM_ALG.RSASSA:
      if (key.asymmetricKeyType !== 'rsa') return bad('RSASSA signature but the key is not RSA');
      ok = verify(hashAlg, message, { key, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
      break;
    case TPM_ALG.RSAPSS:
      if (key.asymmetricKeyType !== 'rsa') return bad('RSAPSS signature but the key is not RSA');
      ok = verify(
        hashAlg,
        message,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
        sig.sig,
      );
      break;
  }
  if (!ok) bad('the signature does not match the attested data and the attestation key');
  return hashAlg;
}
