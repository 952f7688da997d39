import { struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_CREATION_DATA,
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPM2B_NAME,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_CREATE,
  TPML_PCR_SELECTION,
  TPMT_TK_CREATION,
} from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_CreatePrimary, Part 3 §24.1: primaryHandle (auth) is a hierarchy (TPM_RH_ENDORSEMENT
 * for the EK, owner or endorsement for the AK). The same template gives the same key.
 */
export const createPrimary = defineCommand({
  name: 'TPM2_CreatePrimary',
  code: TPM_CC.CreatePrimary,
  handles: ['primaryHandle'],
  authHandles: 1,
  parameters: struct('TPM2_CreatePrimary_In', {
    inSensitive: TPM2B_SENSITIVE_CREATE,
    inPublic: TPM2B_PUBLIC,
    outsideInfo: TPM2B_DATA,
    creationPCR: TPML_PCR_SELECTION,
  }),
  responseHandles: ['objectHandle'],
  response: struct('TPM2_CreatePrimary_Out', {
    outPublic: TPM2B_PUBLIC,
    creationData: TPM2B_CREATION_DATA,
    creationHash: TPM2B_DIGEST,
    creationTicket: TPMT_TK_CREATION,
    name: TPM2B_NAME,
  }),
});
