/**
 * Names for tpm2-tss return codes from the software layers (ESYS, SYS, MU, TCTI, resource
 * manager): `TSS2_<LAYER>_RC_<BASE>`, as tpm2-tss's headers and documentation spell them, so
 * a user can search for them. Codes from the TPM itself (layer 0) are decoded by tpm/rc.ts.
 */
import { tssLayerName } from '../rc.js';

/** TSS2_BASE_RC_* (tss2_common.h). */
const BASE_CODES: Record<number, string> = {
  1: 'GENERAL_FAILURE',
  2: 'NOT_IMPLEMENTED',
  3: 'BAD_CONTEXT',
  4: 'ABI_MISMATCH',
  5: 'BAD_REFERENCE',
  6: 'INSUFFICIENT_BUFFER',
  7: 'BAD_SEQUENCE',
  8: 'NO_CONNECTION',
  9: 'TRY_AGAIN',
  10: 'IO_ERROR',
  11: 'BAD_VALUE',
  12: 'NOT_PERMITTED',
  13: 'INVALID_SESSIONS',
  14: 'NO_DECRYPT_PARAM',
  15: 'NO_ENCRYPT_PARAM',
  16: 'BAD_SIZE',
  17: 'MALFORMED_RESPONSE',
  18: 'INSUFFICIENT_CONTEXT',
  19: 'INSUFFICIENT_RESPONSE',
  20: 'INCOMPATIBLE_TCTI',
  21: 'NOT_SUPPORTED',
  22: 'BAD_TCTI_STRUCTURE',
  23: 'MEMORY',
  24: 'BAD_TR',
  25: 'MULTIPLE_DECRYPT_SESSIONS',
  26: 'MULTIPLE_ENCRYPT_SESSIONS',
  27: 'RSP_AUTH_FAILED',
  28: 'NO_CONFIG',
  29: 'BAD_PATH',
  30: 'NOT_DELETABLE',
  31: 'PATH_ALREADY_EXISTS',
  32: 'KEY_NOT_FOUND',
  33: 'SIGNATURE_VERIFICATION_FAILED',
  34: 'HASH_MISMATCH',
  35: 'KEY_NOT_DUPLICABLE',
  36: 'PATH_NOT_FOUND',
  37: 'NO_CERT',
  38: 'NO_PCR',
  39: 'PCR_NOT_RESETTABLE',
  40: 'BAD_TEMPLATE',
  41: 'AUTHORIZATION_FAILED',
  42: 'AUTHORIZATION_UNKNOWN',
  43: 'NV_NOT_READABLE',
  44: 'NV_TOO_SMALL',
  45: 'NV_NOT_WRITEABLE',
  46: 'POLICY_UNKNOWN',
  47: 'NV_WRONG_TYPE',
  48: 'NAME_ALREADY_EXISTS',
  49: 'NO_TPM',
  50: 'BAD_KEY',
  51: 'NO_HANDLE',
  52: 'NOT_PROVISIONED',
  53: 'ALREADY_PROVISIONED',
  54: 'CALLBACK_NULL',
};

/** The layer of a TSS2_RC (0 = the TPM's own response code). */
export function rcLayer(rc: number): number {
  return (rc >>> 16) & 0xff;
}

/** `TSS2_ESYS_RC_BAD_SEQUENCE` for 0x70007; a hex fallback for codes tpm2-tss does not define. */
export function tssRcName(rc: number): string {
  const layer = tssLayerName(rc);
  const base = BASE_CODES[rc & 0xffff];
  return base ? `TSS2_${layer}_RC_${base}` : `TSS2_${layer}_RC_0x${(rc & 0xffff).toString(16)}`;
}

/** TSS2_BASE_RC_TRY_AGAIN: a TCTI asking to retry (nothing was sent or the TPM was busy). */
export function isTryAgain(rc: number): boolean {
  return rcLayer(rc) !== 0 && (rc & 0xffff) === 9;
}
