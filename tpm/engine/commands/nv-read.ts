/**
 * TPM2_NV_ReadPublic (Part 3 §31.6) and TPM2_NV_Read (Part 3 §31.13): the whole contents of an
 * NV index, read in chunks no larger than TPM_PT_NV_BUFFER_MAX (EK certificates are larger
 * than one response on most TPMs). Authorized by the index itself with its (empty) password,
 * as EK certificate indices allow (TPMA_NV_AUTHREAD).
 */
import { SextantError } from '../../../lib/errors.js';
import { unmarshal } from '../../codec.js';
import { TPM2B_NV_PUBLIC, type TpmsNvPublic } from '../../structures.js';
import { takeWire } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type EsysTr, type Out } from '../esys.js';

export interface NvPublic extends TpmsNvPublic {
  /** The index's Name (nameAlg || H(TPMS_NV_PUBLIC)), as the TPM computed it. */
  name: Uint8Array;
}

/** An ESYS handle for an NV index or persistent object, released (not flushed) after `fn`. */
export async function withTpmHandle<T>(esys: EsysContext, tpmHandle: number, fn: (tr: EsysTr) => Promise<T>): Promise<T> {
  const tr: Out<number> = [null];
  await esys.call('Esys_TR_FromTPMPublic', tpmHandle, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, tr);
  const handle = tr[0] as EsysTr;
  try {
    return await fn(handle);
  } finally {
    esys.callLocal('Esys_TR_Close', [handle]);
  }
}

export async function nvReadPublic(esys: EsysContext, index: EsysTr): Promise<NvPublic> {
  const pub = out();
  const name = out();
  await esys.call('Esys_NV_ReadPublic', index, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, pub, name);
  const nameBytes = takeWire('TPM2B_NAME', name[0]).subarray(2);
  return { ...unmarshal(TPM2B_NV_PUBLIC, takeWire('TPM2B_NV_PUBLIC', pub[0])).value, name: nameBytes };
}

/** Reads `size` bytes from offset 0 in chunks of at most `maxChunk` bytes. */
export async function nvRead(esys: EsysContext, index: EsysTr, size: number, maxChunk: number): Promise<Uint8Array> {
  const result = new Uint8Array(size);
  for (let offset = 0; offset < size; ) {
    const n = Math.min(maxChunk, size - offset);
    const data = out();
    await esys.call('Esys_NV_Read', index, index, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, n, offset, data);
    const chunk = takeWire('TPM2B_MAX_NV_BUFFER', data[0]).subarray(2);
    if (chunk.length !== n) {
      throw new SextantError({ code: 'TPM_RC', message: `TPM2_NV_Read returned ${chunk.length} bytes, asked for ${n}` });
    }
    result.set(chunk, offset);
    offset += n;
  }
  return result;
}
