import { struct, u16 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_DIGEST } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_GetRandom, Part 3 §16.1: at most one digest's worth per call. */
export const getRandom = defineCommand({
  name: 'TPM2_GetRandom',
  code: TPM_CC.GetRandom,
  handles: [],
  authHandles: 0,
  parameters: struct('TPM2_GetRandom_In', { bytesRequested: u16 }),
  responseHandles: [],
  response: struct('TPM2_GetRandom_Out', { randomBytes: TPM2B_DIGEST }),
});
