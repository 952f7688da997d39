/**
 * TPM2_ActivateCredential (Part 3 §12.5): the TPM decrypts a credential made for (EK, AK Name)
 * and releases the secret only if the AK is loaded in the same TPM as the EK. The EK's
 * authPolicy is PolicySecret(TPM_RH_ENDORSEMENT), so it is authorized by a policy session
 * that satisfies exactly that; the AK (userWithAuth, empty auth) by a password session.
 */
import { SextantError, isSextantError } from '../../../lib/errors.js';
import { marshal } from '../../codec.js';
import { TPM_ALG } from '../../constants.js';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPMT_SYM_DEF } from '../../structures.js';
import { takeWire, toC } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type EsysTr, type Out } from '../esys.js';

/** TPM_SE_POLICY (Part 2 §6.11). */
const TPM_SE_POLICY = 0x01;

export interface ActivateCredentialInput {
  /** The key the credential names (the AK). */
  activate: EsysTr;
  /** The key the seed was encrypted to (the EK). */
  ek: EsysTr;
  /** TPM2B_ID_OBJECT contents (integrityHMAC || encIdentity), as MakeCredential returns. */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents (the seed encrypted to the EK). */
  encryptedSecret: Uint8Array;
}

export async function activateCredential(esys: EsysContext, input: ActivateCredentialInput): Promise<Uint8Array> {
  const session: Out<number> = [null];
  await esys.call(
    'Esys_StartAuthSession',
    ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE,
    null, TPM_SE_POLICY,
    toC('TPMT_SYM_DEF', marshal(TPMT_SYM_DEF, { algorithm: TPM_ALG.NULL })),
    TPM_ALG.SHA256, session,
  );
  const policySession = session[0] as EsysTr;
  try {
    await esys.call(
      'Esys_PolicySecret',
      ESYS_TR.RH_ENDORSEMENT, policySession, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE,
      null, null, null, 0, null, null,
    );
    const certInfo = out();
    try {
      await esys.call(
        'Esys_ActivateCredential',
        input.activate, input.ek, ESYS_TR.PASSWORD, policySession, ESYS_TR.NONE,
        toC('TPM2B_ID_OBJECT', marshal(TPM2B_ID_OBJECT, input.credentialBlob)),
        toC('TPM2B_ENCRYPTED_SECRET', marshal(TPM2B_ENCRYPTED_SECRET, input.encryptedSecret)),
        certInfo,
      );
    } catch (e) {
      if (!isSextantError(e, 'TPM_RC')) throw e;
      throw new SextantError({
        code: 'CREDENTIAL_ACTIVATION_FAILED',
        message: `the TPM refused the credential (${e.message}): it was not made for this TPM's EK and this AK`,
        cause: e,
      });
    }
    const wire = takeWire('TPM2B_DIGEST', certInfo[0], { secret: true });
    try {
      return wire.slice(2);
    } finally {
      wire.fill(0);
    }
  } finally {
    // The session was started with continueSession: it stays loaded until flushed.
    await esys.call('Esys_FlushContext', policySession);
  }
}
