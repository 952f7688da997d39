import { i32, struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_DIGEST, TPM2B_NONCE, TPM2B_TIMEOUT, TPMT_TK_AUTH } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_PolicySecret, Part 3 §23.4: authHandle (auth) proves knowledge of an entity's authValue
 * (TPM_RH_ENDORSEMENT for the EK's policy) and updates policySession's digest.
 */
export const policySecret = defineCommand({
  name: 'TPM2_PolicySecret',
  code: TPM_CC.PolicySecret,
  handles: ['authHandle', 'policySession'],
  authHandles: 1,
  parameters: struct('TPM2_PolicySecret_In', {
    nonceTPM: TPM2B_NONCE,
    cpHashA: TPM2B_DIGEST,
    policyRef: TPM2B_NONCE,
    expiration: i32,
  }),
  responseHandles: [],
  response: struct('TPM2_PolicySecret_Out', { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK_AUTH }),
});
