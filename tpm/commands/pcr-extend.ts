import { empty, struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPML_DIGEST_VALUES } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_PCR_Extend, Part 3 §22.2: pcrHandle (auth) is the PCR index. */
export const pcrExtend = defineCommand({
  name: 'TPM2_PCR_Extend',
  code: TPM_CC.PCR_Extend,
  handles: ['pcrHandle'],
  authHandles: 1,
  parameters: struct('TPM2_PCR_Extend_In', { digests: TPML_DIGEST_VALUES }),
  responseHandles: [],
  response: empty,
});
