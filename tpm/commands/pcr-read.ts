import { struct, u32 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPML_DIGEST, TPML_PCR_SELECTION } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_PCR_Read, Part 3 §22.4. Returns at most 8 digests per call: pcrSelectionOut says which
 * ones came back; ask again for the rest.
 */
export const pcrRead = defineCommand({
  name: 'TPM2_PCR_Read',
  code: TPM_CC.PCR_Read,
  handles: [],
  authHandles: 0,
  parameters: struct('TPM2_PCR_Read_In', { pcrSelectionIn: TPML_PCR_SELECTION }),
  responseHandles: [],
  response: struct('TPM2_PCR_Read_Out', {
    pcrUpdateCounter: u32,
    pcrSelectionOut: TPML_PCR_SELECTION,
    pcrValues: TPML_DIGEST,
  }),
});
