import { struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_DIGEST, TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPM2B_NAME } from '../structures.js';
import { defineCommand } from './command.js';

/** TPM2_MakeCredential, Part 3 §12.6 (the TPM's own; the key service uses credential/make-credential.ts). */
export const makeCredentialCommand = defineCommand({
  name: 'TPM2_MakeCredential',
  code: TPM_CC.MakeCredential,
  handles: ['handle'],
  authHandles: 0,
  parameters: struct('TPM2_MakeCredential_In', { credential: TPM2B_DIGEST, objectName: TPM2B_NAME }),
  responseHandles: [],
  response: struct('TPM2_MakeCredential_Out', { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET }),
});
