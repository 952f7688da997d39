/**
 * Key templates as TPMT_PUBLIC values: the endorsement keys of the TCG EK Credential Profile
 * for TPM Family 2.0 (v2.x §2.1.5.1, templates L-1 RSA 2048 and L-2 ECC NIST P-256, "low
 * range"), whose public keys match the EK certificates the manufacturer (or swtpm_setup) wrote
 * to NV 0x01C00002 / 0x01C0000A; and sextant's attestation key.
 */
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from '../constants.js';
import type { TpmtPublicEcc, TpmtPublicRsa } from '../structures.js';

/**
 * PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256 (EK Credential Profile, Table 2): using the EK
 * needs the endorsement hierarchy's authorization, e.g. for TPM2_ActivateCredential.
 */
export const EK_AUTH_POLICY_SHA256 = Uint8Array.from(
  Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex'),
);

/** fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt (0x000300b2). */
export const EK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.adminWithPolicy |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt;

/** fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign (0x00050072). */
export const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;

const AES_128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;

/** What both EK templates share: SHA-256 Names, EK attributes, the endorsement policy. */
function ekCommon() {
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: Uint8Array.from(EK_AUTH_POLICY_SHA256),
  };
}

/** Template L-1: RSA 2048 EK; unique is 256 zero bytes. */
export function ekTemplateRsa2048(): TpmtPublicRsa {
  return {
    type: TPM_ALG.RSA,
    ...ekCommon(),
    parameters: {
      symmetric: { ...AES_128_CFB },
      scheme: { scheme: TPM_ALG.NULL },
      keyBits: 2048,
      exponent: 0,
    },
    unique: new Uint8Array(256),
  };
}

/** Template L-2: ECC NIST P-256 EK; unique is two 32-byte zero coordinates. */
export function ekTemplateEccP256(): TpmtPublicEcc {
  return {
    type: TPM_ALG.ECC,
    ...ekCommon(),
    parameters: {
      symmetric: { ...AES_128_CFB },
      scheme: { scheme: TPM_ALG.NULL },
      curveID: TPM_ECC_CURVE.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    unique: { x: new Uint8Array(32), y: new Uint8Array(32) },
  };
}

/**
 * sextant's attestation key: a restricted ECC P-256 signing key with ECDSA-SHA256, usable
 * without a policy (userWithAuth, empty auth). Restricted means it only signs digests the TPM
 * made itself (quotes, certifications), which is what makes a quote trustworthy.
 */
export function akTemplate(): TpmtPublicEcc {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
      curveID: TPM_ECC_CURVE.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  };
}
