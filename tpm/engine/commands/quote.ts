/**
 * TPM2_Quote (Part 3 §18.4): the TPM signs a TPMS_ATTEST holding the qualifying data (the
 * verifier's nonce) and the digest of the selected PCRs, with a restricted signing key.
 */
import { marshal } from '../../codec.js';
import { TPM_ALG } from '../../constants.js';
import { pcrSelection, type PcrSelectionMap } from '../../pcr-selection.js';
import { TPM2B_DATA, TPML_PCR_SELECTION, TPMT_SIG_SCHEME, type TpmtSigScheme } from '../../structures.js';
import { takeWire, toC } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type EsysTr } from '../esys.js';

export interface QuoteInput {
  qualifyingData: Uint8Array;
  pcrs: PcrSelectionMap;
  /** Default TPM_ALG_NULL: the key's own scheme (the AK's is ECDSA with SHA-256). */
  scheme?: TpmtSigScheme;
}

export interface QuoteOutput {
  /** TPMS_ATTEST bytes exactly as signed (`tpm2_quote -m`). */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes (`tpm2_quote -s`). */
  signature: Uint8Array;
}

export async function quote(esys: EsysContext, key: EsysTr, input: QuoteInput): Promise<QuoteOutput> {
  const quoted = out();
  const signature = out();
  await esys.call(
    'Esys_Quote',
    key, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE,
    toC('TPM2B_DATA', marshal(TPM2B_DATA, input.qualifyingData)),
    toC('TPMT_SIG_SCHEME', marshal(TPMT_SIG_SCHEME, input.scheme ?? { scheme: TPM_ALG.NULL })),
    toC('TPML_PCR_SELECTION', marshal(TPML_PCR_SELECTION, pcrSelection(input.pcrs))),
    quoted, signature,
  );
  // TPM2B_ATTEST is a 2-byte size followed by the TPMS_ATTEST the signature covers.
  const attest = takeWire('TPM2B_ATTEST', quoted[0]).subarray(2);
  return { attest, signature: takeWire('TPMT_SIGNATURE', signature[0]) };
}
