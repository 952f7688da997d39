/**
 * TPM2_PCR_Extend (Part 3 §22.2) and TPM2_PCR_Event (Part 3 §22.3). Both need the PCR's
 * authorization: PCRs 0-23 have an empty auth value, given with a password session.
 */
import type { HashAlg } from '../../../lib/bytes.js';
import { SextantError } from '../../../lib/errors.js';
import { marshal, unmarshal } from '../../codec.js';
import { hashAlgId, hashAlgName } from '../../constants.js';
import { TPM2B_EVENT, TPML_DIGEST_VALUES, type TpmtHa } from '../../structures.js';
import { takeWire, toC } from '../mu.js';
import { ESYS_TR, out, type EsysContext } from '../esys.js';

export type DigestsByBank = Partial<Record<HashAlg, Uint8Array>>;

/** Extends `pcr` in every bank given: new = H(old || digest). */
export async function pcrExtend(esys: EsysContext, pcr: number, digests: DigestsByBank): Promise<void> {
  const values = Object.entries(digests).map(([alg, digest]) => ({ hashAlg: hashAlgId(alg as HashAlg), digest }) as TpmtHa);
  if (values.length === 0) throw new SextantError({ code: 'INVALID_ARGUMENT', message: 'PCR_Extend needs at least one digest' });
  await esys.call(
    'Esys_PCR_Extend',
    ESYS_TR.pcr(checkPcr(pcr)), ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE,
    toC('TPML_DIGEST_VALUES', marshal(TPML_DIGEST_VALUES, values)),
  );
}

/**
 * Hashes `data` (at most 1024 bytes) with every bank's algorithm inside the TPM and extends
 * each bank with its digest; returns those digests.
 */
export async function pcrEvent(esys: EsysContext, pcr: number, data: Uint8Array): Promise<DigestsByBank> {
  const digests = out();
  await esys.call(
    'Esys_PCR_Event',
    ESYS_TR.pcr(checkPcr(pcr)), ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE,
    toC('TPM2B_EVENT', marshal(TPM2B_EVENT, data)),
    digests,
  );
  const result: DigestsByBank = {};
  for (const ha of unmarshal(TPML_DIGEST_VALUES, takeWire('TPML_DIGEST_VALUES', digests[0]))) {
    const alg = hashAlgName(ha.hashAlg);
    if (alg) result[alg] = ha.digest;
  }
  return result;
}

function checkPcr(pcr: number): number {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `PCR ${pcr} is not 0-23` });
  return pcr;
}
