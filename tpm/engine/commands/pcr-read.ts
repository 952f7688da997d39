/**
 * TPM2_PCR_Read (Part 3 §22.4). A response carries at most 8 digests (TPML_DIGEST), so the
 * engine asks again for whatever the TPM left out until every selected PCR has a value.
 * pcrSelectionOut says which PCRs a response holds, in TPM order.
 */
import type { HashAlg } from '../../../lib/bytes.js';
import { SextantError } from '../../../lib/errors.js';
import type { PcrBanks } from '../../../measurements/pcr/extend.js';
import { marshal, unmarshal } from '../../codec.js';
import { hashAlgName } from '../../constants.js';
import { pcrSelection, selectedPcrs, type PcrSelectionMap } from '../../pcr-selection.js';
import { TPML_DIGEST, TPML_PCR_SELECTION } from '../../structures.js';
import { takeWire, toC } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type Out } from '../esys.js';

export async function pcrRead(esys: EsysContext, wanted: PcrSelectionMap): Promise<PcrBanks> {
  const remaining = new Map<HashAlg, Set<number>>();
  for (const [alg, pcrs] of Object.entries(wanted) as [HashAlg, readonly number[]][]) remaining.set(alg, new Set(pcrs));
  const result: PcrBanks = {};
  for (const alg of remaining.keys()) result[alg] = {};

  while ([...remaining.values()].some((s) => s.size > 0)) {
    const ask: PcrSelectionMap = {};
    for (const [alg, s] of remaining) if (s.size) ask[alg] = [...s].sort((a, b) => a - b);
    const counter: Out<number> = [null];
    const selOut = out();
    const values = out();
    await esys.call(
      'Esys_PCR_Read',
      ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE,
      toC('TPML_PCR_SELECTION', marshal(TPML_PCR_SELECTION, pcrSelection(ask))),
      counter, selOut, values,
    );
    const got = selectedPcrs(unmarshal(TPML_PCR_SELECTION, takeWire('TPML_PCR_SELECTION', selOut[0])));
    const digests = unmarshal(TPML_DIGEST, takeWire('TPML_DIGEST', values[0]));
    if (got.length !== digests.length) {
      throw new SextantError({ code: 'TPM_RC', message: `TPM2_PCR_Read: ${got.length} PCRs selected but ${digests.length} digests` });
    }
    if (got.length === 0) {
      const missing = [...remaining].filter(([, s]) => s.size).map(([alg, s]) => `${alg}:${[...s].join(',')}`);
      throw new SextantError({ code: 'INVALID_ARGUMENT', message: `the TPM has no PCR ${missing.join(' ')} (bank not allocated?)` });
    }
    got.forEach(({ hash, index }, i) => {
      const alg = hashAlgName(hash);
      if (!alg || !remaining.get(alg)?.delete(index)) {
        throw new SextantError({ code: 'TPM_RC', message: `TPM2_PCR_Read returned PCR ${index} of bank 0x${hash.toString(16)}, which was not asked for` });
      }
      result[alg]![String(index)] = Buffer.from(digests[i]).toString('hex');
    });
  }
  return result;
}
