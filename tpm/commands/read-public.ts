import { empty, struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_NAME, TPM2B_PUBLIC } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_ReadPublic, Part 3 §12.4. */
export const readPublic = defineCommand({
  name: 'TPM2_ReadPublic',
  code: TPM_CC.ReadPublic,
  handles: ['objectHandle'],
  authHandles: 0,
  parameters: empty,
  responseHandles: [],
  response: struct('TPM2_ReadPublic_Out', { outPublic: TPM2B_PUBLIC, name: TPM2B_NAME, qualifiedName: TPM2B_NAME }),
});
