import { bool, struct, u32 } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPMS_CAPABILITY_DATA } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_GetCapability, Part 3 §30.2. Loop on `moreData` from the last property + 1. */
export const getCapability = defineCommand({
  name: 'TPM2_GetCapability',
  code: TPM_CC.GetCapability,
  handles: [],
  authHandles: 0,
  parameters: struct('TPM2_GetCapability_In', { capability: u32, property: u32, propertyCount: u32 }),
  responseHandles: [],
  response: struct('TPM2_GetCapability_Out', { moreData: bool, capabilityData: TPMS_CAPABILITY_DATA }),
});
