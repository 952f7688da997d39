import { fail } from '../../lib/errors.js';
import { TPMA_OBJECT } from '../constants.js';
import type { TpmtPublic } from '../structures.js';

/**
 * The one check of what makes a key an attestation key (the key service's round 1, the quote
 * verifier, mutual attestation). Only a restricted signing key guarantees that what it signed
 * with TPM_GENERATED_VALUE was made by the TPM (Part 1 §29.2): an unrestricted key can sign
 * forged TPMS_ATTEST bytes. It must also have been created inside the TPM and be unable to
 * leave it (fixedTPM, fixedParent, sensitiveDataOrigin), and not be a decryption key:
 * credential activation only proves the key's Name is in the EK's TPM, and the Name covers
 * these attributes.
 */
export const AK_REQUIRED_ATTRIBUTES = TPMA_OBJECT.restricted | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;

export function checkAkAttributes(ak: Pick<TpmtPublic, 'objectAttributes'>): void {
  if ((ak.objectAttributes & AK_REQUIRED_ATTRIBUTES) !== AK_REQUIRED_ATTRIBUTES || (ak.objectAttributes & TPMA_OBJECT.decrypt) !== 0) {
    fail('AK_ATTRIBUTES_INVALID', 'the attestation key must be a restricted, sign-only key created in the TPM that cannot leave it (restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin; not decrypt)');
  }
}
