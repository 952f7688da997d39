import { struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_EVENT, TPML_DIGEST_VALUES } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_PCR_Event, Part 3 §22.3: the TPM hashes eventData in every bank and extends each. */
export const pcrEvent = defineCommand({
  name: 'TPM2_PCR_Event',
  code: TPM_CC.PCR_Event,
  handles: ['pcrHandle'],
  authHandles: 1,
  parameters: struct('TPM2_PCR_Event_In', { eventData: TPM2B_EVENT }),
  responseHandles: [],
  response: struct('TPM2_PCR_Event_Out', { digests: TPML_DIGEST_VALUES }),
});
