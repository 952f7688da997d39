/**
 * TPM2_NV_ReadPublic (Part 3 §31.6) and TPM2_NV_Read (§31.13): the whole contents of an NV
 * index, read in chunks no larger than TPM_PT_NV_BUFFER_MAX (EK certificates are larger than
 * one response on most TPMs). Authorized by the index itself with its (empty) password, as EK
 * certificate indices allow (TPMA_NV_AUTHREAD).
 */
import { bytesEqual } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { execute, type TpmTransport } from '../commands/command.js';
import { nvRead as nvReadCommand } from '../commands/nv-read.js';
import { nvReadPublic as nvReadPublicCommand } from '../commands/nv-read-public.js';
import { nvWrite as nvWriteCommand } from '../commands/nv-write.js';
import { nvIndexName } from '../name.js';
import type { TpmsNvPublic } from '../structures.js';

export interface NvPublic extends TpmsNvPublic {
  /** The index's Name (nameAlg || H(TPMS_NV_PUBLIC)), computed here and checked against the TPM's. */
  name: Uint8Array;
}

export async function nvReadPublic(t: TpmTransport, nvIndex: number): Promise<NvPublic> {
  const out = await execute(t, nvReadPublicCommand, { nvIndex });
  const name = nvIndexName(out.nvPublic);
  if (!bytesEqual(name, out.nvName)) throw new SextantError({ code: 'TPM_RC', message: 'TPM2_NV_ReadPublic: the Name does not match the public area' });
  return { ...out.nvPublic.value, name };
}

/** Reads `size` bytes from offset 0 in chunks of at most `maxChunk` bytes. */
export async function nvRead(t: TpmTransport, nvIndex: number, size: number, maxChunk: number): Promise<Uint8Array> {
  const result = new Uint8Array(size);
  for (let offset = 0; offset < size; ) {
    const n = Math.min(maxChunk, size - offset);
    const { data } = await execute(t, nvReadCommand, { authHandle: nvIndex, nvIndex, size: n, offset });
    if (data.length !== n) throw new SextantError({ code: 'TPM_RC', message: `TPM2_NV_Read returned ${data.length} bytes, asked for ${n}` });
    result.set(data, offset);
    offset += n;
  }
  return result;
}

/** Writes `data` from offset 0 in chunks of at most `maxChunk` bytes, authorized by `authHandle` (owner or the index) with an empty password. */
export async function nvWrite(t: TpmTransport, authHandle: number, nvIndex: number, data: Uint8Array, maxChunk: number): Promise<void> {
  for (let offset = 0; offset < data.length; offset += maxChunk) {
    await execute(t, nvWriteCommand, { authHandle, nvIndex, data: data.subarray(offset, offset + maxChunk), offset });
  }
}
