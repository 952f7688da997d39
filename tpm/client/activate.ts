/**
 * TPM2_ActivateCredential (Part 3 §12.5): the TPM decrypts a credential made for (EK, AK Name)
 * and releases the secret only if the AK is loaded in the same TPM as the EK. The EK's
 * authPolicy is PolicySecret(TPM_RH_ENDORSEMENT), so it is authorized by a policy session
 * that satisfies exactly that. The AK (userWithAuth, empty authValue) is authorized by an
 * HMAC session salted to the EK with the encrypt attribute: the released secret (certInfo)
 * crosses the TPM bus AES-CFB encrypted under a key only this TPM and the caller know, and
 * the response HMAC proves the answer came from that TPM.
 */
import { randomBytes } from 'node:crypto';
import { SextantError, isSextantError } from '../../lib/errors.js';
import { activateCredential as activateCredentialCommand } from '../commands/activate-credential.js';
import { CONTINUE_SESSION, execute, type TpmTransport } from '../commands/command.js';
import { policySecret } from '../commands/policy-secret.js';
import { startAuthSession, TPM_SE } from '../commands/start-auth-session.js';
import { TPM_ALG, TPM_RH } from '../constants.js';
import { flushContext, type LoadedKey } from './keys.js';
import type { SeedOptions } from '../credential/seed.js';
import type { HmacSession } from '../session/session.js';
import { saltKeyFor, withSaltedSession } from './session.js';

export interface ActivateCredentialInput {
  /** The key the credential names (the AK). */
  activate: LoadedKey;
  /** The key the seed was encrypted to (the EK). */
  ek: LoadedKey;
  /** DER of the EK certificate, when the caller has it: the session salt is encrypted to its key. */
  ekCertificate?: Uint8Array;
  /** TPM2B_ID_OBJECT contents (integrityHMAC || encIdentity), as MakeCredential returns. */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents (the seed encrypted to the EK). */
  encryptedSecret: Uint8Array;
}

const empty = new Uint8Array(0);

/** `salt` fixes the session salt (RSA EK): for tests that look for it on the bus. */
export async function activateCredential(t: TpmTransport, input: ActivateCredentialInput, salt: SeedOptions = {}): Promise<Uint8Array> {
  const session = async (hmac: HmacSession) => {
    const { sessionHandle } = await execute(t, startAuthSession, {
      tpmKey: TPM_RH.NULL,
      bind: TPM_RH.NULL,
      nonceCaller: randomBytes(16),
      encryptedSalt: empty,
      sessionType: TPM_SE.POLICY,
      symmetric: { algorithm: TPM_ALG.NULL },
      authHash: TPM_ALG.SHA256,
    });
    try {
      await execute(t, policySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: sessionHandle, nonceTPM: empty, cpHashA: empty, policyRef: empty, expiration: 0 });
      try {
        const out = await execute(
          t,
          activateCredentialCommand,
          { activateHandle: input.activate.handle, keyHandle: input.ek.handle, credentialBlob: input.credentialBlob, secret: input.encryptedSecret },
          [{ session: hmac, use: { encrypt: true } }, { sessionHandle, nonceCaller: randomBytes(16), attributes: CONTINUE_SESSION }],
          { names: [input.activate.name, input.ek.name] },
        );
        return out.certInfo;
      } catch (e) {
        if (!isSextantError(e, 'TPM_RC')) throw e;
        throw new SextantError({
          code: 'CREDENTIAL_ACTIVATION_FAILED',
          message: `the TPM refused the credential (${e.message}): it was not made for this TPM's EK and this AK`,
          cause: e,
        });
      }
    } finally {
      // continueSession keeps the session loaded (also after a failure): flush it either way.
      await flushContext(t, sessionHandle);
    }
  };
  return withSaltedSession(t, saltKeyFor(input.ek, input.ekCertificate), session, salt);
}
