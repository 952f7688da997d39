/** TPM2_GetRandom (Part 3 §16.1): up to one digest's worth of random bytes per call. */
import { SextantError } from '../../../lib/errors.js';
import { takeWire } from '../mu.js';
import { ESYS_TR, out, type EsysContext } from '../esys.js';

export async function getRandom(esys: EsysContext, count: number): Promise<Uint8Array> {
  const result = new Uint8Array(count);
  let filled = 0;
  while (filled < count) {
    const random = out();
    await esys.call('Esys_GetRandom', ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, Math.min(count - filled, 64), random);
    // TPM2B_DIGEST: a 2-byte size, then the bytes (the TPM may return fewer than asked).
    const bytes = takeWire('TPM2B_DIGEST', random[0], { secret: true }).subarray(2);
    if (bytes.length === 0) throw new SextantError({ code: 'TPM_RC', message: 'TPM2_GetRandom returned no bytes' });
    result.set(bytes.subarray(0, count - filled), filled);
    filled += bytes.length;
    bytes.fill(0);
  }
  return result;
}
