import type { KeyObject } from 'node:crypto';
import type { HashAlg } from '../../lib/bytes.js';
import type { TpmlPcrSelection } from '../../tpm/structures.js';

/**
 * What the verifier needs from the TPM wire codec (tpm/): parsing the AK, TPM2_MakeCredential
 * and quote signature checks. Pure computation: no TPM and no FFI on the key service.
 */

export interface AkIdentity {
  /** TPM Name of the AK (nameAlg || H(TPMT_PUBLIC)). */
  name: Buffer;
  /** The parsed public area, for verifyQuote. */
  publicArea: unknown;
  /**
   * The public key, imported on first use and kept with the identity (every quote of this AK
   * would otherwise import it again). A key the area does not hold fails here, at verifyQuote.
   */
  publicKey?: () => KeyObject;
}

export interface QuotedFacts {
  /** TPMS_ATTEST.extraData: the qualifying data the agent asked for. */
  extraData: Buffer;
  /** TPMS_QUOTE_INFO.pcrSelect, bank by bank. */
  selection: { alg: HashAlg; pcrs: number[] }[];
  /** TPMS_QUOTE_INFO.pcrSelect as signed (the order pcrDigest hashes the values in). */
  pcrSelect: TpmlPcrSelection;
  /** TPMS_QUOTE_INFO.pcrDigest. */
  pcrDigest: Buffer;
  /** The signature's hash, which is also pcrDigest's hash. */
  signatureHash: HashAlg;
  /**
   * TPMS_CLOCK_INFO boot counters (obfuscated by the TPM for keys outside the endorsement
   * hierarchy, but with a mask fixed per key: equal values of one AK mean the same boot).
   */
  resetCount: number;
  restartCount: number;
}

export interface TpmChecks {
  /** Parses a TPMT_PUBLIC and checks it is a restricted, TPM-resident signing key (else AK_ATTRIBUTES_INVALID). */
  parseAk(akPublic: Uint8Array): AkIdentity;
  /** TPM2_MakeCredential to the EK (the key its certificate names, or its enrolled public area), for the object named `akName`. */
  makeCredential(ekKey: KeyObject, akName: Uint8Array, credential: Uint8Array): { credentialBlob: Buffer; encryptedSecret: Buffer };
  /**
   * Checks that `attest` is a TPM-generated quote signed by the AK (QUOTE_SIGNATURE_INVALID and
   * friends) whose qualifying data is `extraData` (QUOTE_NONCE_MISMATCH).
   */
  verifyQuote(ak: AkIdentity, attest: Uint8Array, signature: Uint8Array, extraData: Uint8Array): QuotedFacts;
}
