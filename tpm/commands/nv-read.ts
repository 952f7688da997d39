import { struct, u16 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_MAX_NV_BUFFER } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_NV_Read, Part 3 §31.13: authHandle (auth) is the owner/platform hierarchy or the index
 * itself (EK certificate indices are owner-readable). Read in chunks of TPM_PT_NV_BUFFER_MAX.
 */
export const nvRead = defineCommand({
  name: 'TPM2_NV_Read',
  code: TPM_CC.NV_Read,
  handles: ['authHandle', 'nvIndex'],
  authHandles: 1,
  parameters: struct('TPM2_NV_Read_In', { size: u16, offset: u16 }),
  responseHandles: [],
  response: struct('TPM2_NV_Read_Out', { data: TPM2B_MAX_NV_BUFFER }),
});
