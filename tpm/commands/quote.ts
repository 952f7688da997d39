import { struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_ATTEST, TPM2B_DATA, TPML_PCR_SELECTION, TPMT_SIG_SCHEME, TPMT_SIGNATURE } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_Quote, Part 3 §18.4: signHandle (auth) is the AK. `quoted.raw` holds the exact
 * TPMS_ATTEST bytes that were signed (what verifyQuote takes as `attest`).
 */
export const quote = defineCommand({
  name: 'TPM2_Quote',
  code: TPM_CC.Quote,
  handles: ['signHandle'],
  authHandles: 1,
  parameters: struct('TPM2_Quote_In', {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME,
    PCRselect: TPML_PCR_SELECTION,
  }),
  responseHandles: [],
  response: struct('TPM2_Quote_Out', { quoted: TPM2B_ATTEST, signature: TPMT_SIGNATURE }),
});
