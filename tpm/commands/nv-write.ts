import { empty, struct, u16 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_MAX_NV_BUFFER } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_NV_Write, Part 3 §31.10: authHandle (auth) is the owner/platform hierarchy or the index
 * itself; at most TPM_PT_NV_BUFFER_MAX bytes at `offset`. Azure's HCL report request index
 * (0x01400002) takes the user data this way.
 */
export const nvWrite = defineCommand({
  name: 'TPM2_NV_Write',
  code: TPM_CC.NV_Write,
  handles: ['authHandle', 'nvIndex'],
  authHandles: 1,
  parameters: struct('TPM2_NV_Write_In', { data: TPM2B_MAX_NV_BUFFER, offset: u16 }),
  responseHandles: [],
  response: empty,
});
