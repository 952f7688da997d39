import { empty, struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_NAME, TPM2B_NV_PUBLIC } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_NV_ReadPublic, Part 3 §31.6: TPM_RC_HANDLE when the index is not defined. */
export const nvReadPublic = defineCommand({
  name: 'TPM2_NV_ReadPublic',
  code: TPM_CC.NV_ReadPublic,
  handles: ['nvIndex'],
  authHandles: 0,
  parameters: empty,
  responseHandles: [],
  response: struct('TPM2_NV_ReadPublic_Out', { nvPublic: TPM2B_NV_PUBLIC, nvName: TPM2B_NAME }),
});
