/**
 * Verifies a TPM2_Quote (Part 3 §18.4) in pure TypeScript: the signed TPMS_ATTEST bytes, the
 * TPMT_SIGNATURE and the attestation key's public area. Stages run in order and the first
 * failure throws with its own code:
 *   parse (TPM_UNMARSHAL) -> AK attributes (AK_ATTRIBUTES_INVALID) -> magic and type
 *   (QUOTE_NOT_TPM_GENERATED) -> signature (QUOTE_SIGNATURE_INVALID) -> qualifying data
 *   (QUOTE_NONCE_MISMATCH) -> qualified signer (QUOTE_SIGNER_MISMATCH) -> PCR digest
 *   (PCR_DIGEST_MISMATCH).
 * The result is the parsed facts, not a boolean.
 */
import type { KeyObject } from 'node:crypto';
import { bytesEqual, DIGEST_SIZE, hash, toHex, type HashAlg } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import { unmarshal, type Sized } from '../codec.js';
import { algName, hashAlgName, TPM_GENERATED_VALUE, TPM_ST } from '../constants.js';
import { selectedPcrs, selectionToMap, type PcrSelectionMap } from '../pcr-selection.js';
import { publicKeyFromTpmt } from '../public-key.js';
import {
  TPMS_ATTEST,
  TPMT_SIGNATURE,
  type TpmlPcrSelection,
  type TpmsAttestQuote,
  type TpmtPublic,
  type TpmtSignature,
} from '../structures.js';
import { checkAkAttributes } from './ak-attributes.js';
import { verifyAttestSignature } from './signature.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';


export interface QuoteEvidence {
  /** The TPMS_ATTEST bytes exactly as signed (`tpm2_quote -m`, the TPM2B_ATTEST contents). */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes (`tpm2_quote -s`), or an already decoded signature. */
  signature: Uint8Array | TpmtSignature;
  /** The AK's public area; a decoded TPM2B_PUBLIC is fine. */
  akPublic: TpmtPublic | Sized<TpmtPublic>;
  /** The AK's public key as a KeyObject, when the caller already has it from `akPublic` (saves the import per quote). */
  akKey?: KeyObject;
}

export interface QuoteExpectations {
  /** The qualifying data the verifier asked for (TPMS_ATTEST.extraData). */
  extraData: Uint8Array;
  /**
   * PCR values claimed for the quote (e.g. replayed from the event log or read alongside it).
   * Every selected PCR must be present; their digest must equal pcrDigest.
   */
  pcrs?: PcrBanks;
  /** Expected Qualified Name of the AK (see qualifiedName()); checked when given. */
  qualifiedSigner?: Uint8Array;
}

export interface VerifiedQuote {
  attest: TpmsAttestQuote;
  /** The PCRs the quote covers, bank by bank. */
  selection: PcrSelectionMap;
  /** Hex of pcrDigest as signed. */
  pcrDigest: string;
  /** Hash algorithm of the signature (and of pcrDigest). */
  signatureHash: HashAlg;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  firmwareVersion: bigint;
}

/** Parses and checks a quote; throws a SextantError naming the first failed stage. */
export function verifyQuote(evidence: QuoteEvidence, expected: QuoteExpectations): VerifiedQuote {
  const attest = unmarshal(TPMS_ATTEST, evidence.attest);
  const signature =
    evidence.signature instanceof Uint8Array ? unmarshal(TPMT_SIGNATURE, evidence.signature) : evidence.signature;
  const akPublic = 'value' in evidence.akPublic ? evidence.akPublic.value : evidence.akPublic;

  checkAkAttributes(akPublic);
  const quote = checkIsQuote(attest);
  const signatureHash = verifyAttestSignature(evidence.akKey ?? publicKeyFromTpmt(akPublic), akPublic, evidence.attest, signature);

  if (!bytesEqual(quote.extraData, expected.extraData)) {
    fail(
      'QUOTE_NONCE_MISMATCH',
      `quote's qualifying data ${toHex(quote.extraData)} is not the expected ${toHex(expected.extraData)}`,
    );
  }
  if (expected.qualifiedSigner && !bytesEqual(quote.qualifiedSigner, expected.qualifiedSigner)) {
    fail('QUOTE_SIGNER_MISMATCH', `quote was signed by ${toHex(quote.qualifiedSigner)}, expected ${toHex(expected.qualifiedSigner)}`);
  }
  if (expected.pcrs) checkPcrDigest(signatureHash, quote.attested, expected.pcrs);

  return {
    attest: quote,
    selection: selectionToMap(quote.attested.pcrSelect),
    pcrDigest: toHex(quote.attested.pcrDigest),
    signatureHash,
    clock: quote.clockInfo.clock,
    resetCount: quote.clockInfo.resetCount,
    restartCount: quote.clockInfo.restartCount,
    firmwareVersion: quote.firmwareVersion,
  };
}

function checkIsQuote(attest: ReturnType<typeof TPMS_ATTEST.decode>): TpmsAttestQuote {
  if (attest.magic !== TPM_GENERATED_VALUE) {
    fail('QUOTE_NOT_TPM_GENERATED', `attestation magic is 0x${attest.magic.toString(16)}, not TPM_GENERATED_VALUE`);
  }
  if (attest.type !== TPM_ST.ATTEST_QUOTE) {
    fail('QUOTE_NOT_TPM_GENERATED', `attestation type is 0x${attest.type.toString(16)}, not TPM_ST_ATTEST_QUOTE`);
  }
  return attest;
}

/** The value TPM2_Quote signs as pcrDigest: H_sig(PCR values concatenated in selection order). */
export function quotePcrDigest(signatureHash: HashAlg, pcrSelect: TpmlPcrSelection, pcrs: PcrBanks): Buffer {
  const values: Uint8Array[] = [];
  for (const { hash: bankId, index } of selectedPcrs(pcrSelect)) {
    const bank = hashAlgName(bankId);
    const hex = bank ? pcrs[bank]?.[String(index)] : undefined;
    if (!bank || hex === undefined) {
      fail('PCR_DIGEST_MISMATCH', `no value given for quoted PCR ${algName(bankId)}:${index}`);
    }
    if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== 2 * DIGEST_SIZE[bank]) {
      fail('INVALID_ARGUMENT', `PCR ${bank}:${index} value is not ${DIGEST_SIZE[bank]} bytes of hex`);
    }
    values.push(Buffer.from(hex, 'hex'));
  }
  return hash(signatureHash, ...values);
}

/**
 * The one PCR-digest check (the quote verifier here, the key service's checkPcrDigest stage,
 * the confirm round, mutual attestation): the given values must hash to the signed pcrDigest,
 * so from here on they are as good as signed by the TPM.
 */
export function checkPcrDigest(signatureHash: HashAlg, attested: { pcrSelect: TpmlPcrSelection; pcrDigest: Uint8Array }, pcrs: PcrBanks): void {
  const digest = quotePcrDigest(signatureHash, attested.pcrSelect, pcrs);
  if (!bytesEqual(digest, attested.pcrDigest)) {
    fail(
      'PCR_DIGEST_MISMATCH',
      `quoted pcrDigest ${toHex(attested.pcrDigest)} is not the digest of the given PCR values (${toHex(digest)})`,
    );
  }
}
