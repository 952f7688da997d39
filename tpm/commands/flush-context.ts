import { empty, struct, u32 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { defineCommand } from './command.js';

/**
 * TPM2_FlushContext, Part 3 §28.4. The handle to flush is a *parameter*, not in the handle
 * area (so no authorization and no name is involved).
 */
export const flushContext = defineCommand({
  name: 'TPM2_FlushContext',
  code: TPM_CC.FlushContext,
  handles: [],
  authHandles: 0,
  parameters: struct('TPM2_FlushContext_In', { flushHandle: u32 }),
  responseHandles: [],
  response: empty,
});
