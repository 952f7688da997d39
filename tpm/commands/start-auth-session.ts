import { struct, u16, u8 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_NONCE, TPMT_SYM_DEF } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM_SE session types (Part 2 §6.11). */
export const TPM_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/**
 * TPM2_StartAuthSession, Part 3 §11.1: tpmKey and bind are TPM_RH_NULL for an unsalted,
 * unbound session. A policy session for the EK needs no HMAC (see policySecret).
 */
export const startAuthSession = defineCommand({
  name: 'TPM2_StartAuthSession',
  code: TPM_CC.StartAuthSession,
  handles: ['tpmKey', 'bind'],
  authHandles: 0,
  parameters: struct('TPM2_StartAuthSession_In', {
    nonceCaller: TPM2B_NONCE,
    encryptedSalt: TPM2B_ENCRYPTED_SECRET,
    sessionType: u8,
    symmetric: TPMT_SYM_DEF,
    authHash: u16,
  }),
  responseHandles: ['sessionHandle'],
  response: struct('TPM2_StartAuthSession_Out', { nonceTPM: TPM2B_NONCE }),
});
