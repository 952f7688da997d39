import type { KeyObject } from 'node:crypto';
import { bytesEqual, hash, toHex } from '../../lib/bytes.js';
import { SextantError, isSextantError } from '../../lib/errors.js';
import { unmarshal } from '../../tpm/codec.js';
import { EK_ATTRIBUTES, EK_AUTH_POLICY_SHA256 } from '../../tpm/ek/templates.js';
import { publicKeyFromTpmt } from '../../tpm/public-key.js';
import { TPMT_PUBLIC } from '../../tpm/structures.js';

/**
 * The EK's public key as a node names it, before anything trusts it: from its certificate
 * (ek-chain.ts parseEkCert), or, for a TPM without one, from the EK's public area, which must
 * be a default-template EK (TCG EK Credential Profile L-1/L-2 attributes and policy: a key an
 * agent could make elsewhere would not be an endorsement key, and MakeCredential assumes the
 * template's parameters).
 */

/** SHA-256 of the key's DER SubjectPublicKeyInfo, lowercase hex: how inventories and disk bindings name an EK. */
export function ekSpkiSha256(key: KeyObject): string {
  return toHex(hash('sha256', key.export({ type: 'spki', format: 'der' })));
}

export function parseEkPublic(bytes: Uint8Array): KeyObject {
  let pub;
  try {
    pub = unmarshal(TPMT_PUBLIC, bytes);
  } catch (e) {
    if (isSextantError(e)) throw new SextantError({ code: 'PROTOCOL_INVALID', message: `EK public area: ${e.message}`, cause: e });
    throw e;
  }
  if (pub.objectAttributes !== EK_ATTRIBUTES || !bytesEqual(pub.authPolicy, EK_AUTH_POLICY_SHA256)) {
    throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'EK public area: not an endorsement key of the TCG default templates (attributes or policy differ)' });
  }
  return publicKeyFromTpmt(pub);
}
