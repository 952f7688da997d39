import { struct } from '../codec.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_DIGEST, TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT } from '../structures.js';
import { defineCommand } from './command.js';

/**
 * TPM2_ActivateCredential, Part 3 §12.5: activateHandle (auth, ADMIN role: the AK's password
 * or policy) is the object whose Name the credential names; keyHandle (auth) is the EK, whose
 * policy is PolicySecret(TPM_RH_ENDORSEMENT). certInfo is the secret.
 */
export const activateCredential = defineCommand({
  name: 'TPM2_ActivateCredential',
  code: TPM_CC.ActivateCredential,
  handles: ['activateHandle', 'keyHandle'],
  authHandles: 2,
  parameters: struct('TPM2_ActivateCredential_In', { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET }),
  responseHandles: [],
  response: struct('TPM2_ActivateCredential_Out', { certInfo: TPM2B_DIGEST }),
});
