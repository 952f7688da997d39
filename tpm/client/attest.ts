/**
 * A quote with the PCR values it covers, as the agent sends it: the AK is created, used and
 * flushed within the call. PCRs are read after the quote; if an extend slipped in between
 * (the values no longer hash to the signed pcrDigest), the quote is taken again.
 */
import { bytesEqual, type HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { unmarshal, type Sized } from '../codec.js';
import { TPM_ALG, TPM_ST, hashAlgName } from '../constants.js';
import type { PcrSelectionMap } from '../pcr-selection.js';
import { quotePcrDigest } from '../quote/verify.js';
import { TPMS_ATTEST, TPMT_SIGNATURE, type TpmtPublic } from '../structures.js';
import type { EkKind, Tpm } from './tpm.js';

export interface PcrQuote {
  /** TPMS_ATTEST bytes as signed. */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes. */
  signature: Uint8Array;
  /** The AK's public area (`raw`: TPMT_PUBLIC bytes). */
  akPublic: Sized<TpmtPublic>;
  akName: Uint8Array;
  /** Values of the quoted PCRs: they hash to the quote's pcrDigest. */
  pcrs: PcrBanks;
}

const ATTEMPTS = 5;

export async function quotePcrs(tpm: Tpm, input: { qualifyingData: Uint8Array; pcrs: PcrSelectionMap }): Promise<PcrQuote> {
  return tpm.withAk(async (ak) => {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const q = await tpm.quote(ak.handle, input);
      const pcrs = await tpm.pcrRead(input.pcrs);
      if (coversValues(q.attest, q.signature, pcrs)) {
        return { ...q, akPublic: ak.public, akName: ak.name, pcrs };
      }
    }
    throw new SextantError({ code: 'PCR_DIGEST_MISMATCH', message: `PCRs kept changing while quoting (${ATTEMPTS} attempts)` });
  });
}

/** True when the PCR values read hash to the pcrDigest the TPM signed. */
function coversValues(attestBytes: Uint8Array, signatureBytes: Uint8Array, pcrs: PcrBanks): boolean {
  const attest = unmarshal(TPMS_ATTEST, attestBytes);
  const signature = unmarshal(TPMT_SIGNATURE, signatureBytes);
  if (attest.type !== TPM_ST.ATTEST_QUOTE || signature.sigAlg === TPM_ALG.NULL) {
    throw new SextantError({ code: 'TPM_RC', message: 'TPM2_Quote returned something other than a signed quote' });
  }
  const alg: HashAlg | undefined = hashAlgName(signature.hash);
  if (!alg) throw new SextantError({ code: 'TPM_RC', message: `quote signed with unsupported hash 0x${signature.hash.toString(16)}` });
  return bytesEqual(quotePcrDigest(alg, attest.attested.pcrSelect, pcrs), attest.attested.pcrDigest);
}

/**
 * Proves the AK lives in this TPM: decrypts a credential the verifier made for this TPM's EK
 * and the AK's Name (MakeCredential), loading both keys for the call and flushing them after.
 */
export function activateAkCredential(
  tpm: Tpm,
  ekKind: EkKind,
  credential: { credentialBlob: Uint8Array; encryptedSecret: Uint8Array; ekCertificate?: Uint8Array },
): Promise<Uint8Array> {
  return tpm.withEkAndAk(ekKind, (ek, ak) => tpm.activateCredential({ activate: ak, ek, ...credential }));
}
