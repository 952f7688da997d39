/**
 * The C boundary: wire bytes -> C structure (libtss2-mu unmarshal into an opaque buffer) and
 * ESYS output pointer -> wire bytes (libtss2-mu marshal, then Esys_Free). The engine never
 * knows a C struct layout; the buffers are sized well above the largest structure it uses
 * (a TPM2B_PUBLIC with an RSA-4096 key is under 1 KiB in C).
 */
import { SextantError } from '../../lib/errors.js';
import { tss, type MuType, type NativePointer } from './ffi.js';
import { tssRcName } from './tss-rc.js';

/** Room for any C structure the engine passes in. */
const C_STRUCT_BYTES = 8192;
/** Room for any marshalled response structure (TPM responses are at most 4 KiB). */
const WIRE_BYTES = 8192;

/** A C structure filled by libtss2-mu from wire bytes; pass it where ESYS wants `const T *`. */
export function toC(type: MuType, wire: Uint8Array): Buffer {
  const dest = Buffer.alloc(C_STRUCT_BYTES);
  const offset = [0];
  const rc = tss().unmarshal[type](Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), wire.byteLength, offset, dest) as number;
  if (rc !== 0) {
    throw new SextantError({ code: 'TPM_UNMARSHAL', message: `${type}: libtss2-mu rejected the input (${tssRcName(rc)})` });
  }
  if (offset[0] !== wire.byteLength) {
    throw new SextantError({
      code: 'TPM_UNMARSHAL',
      message: `${type}: ${wire.byteLength - Number(offset[0])} trailing bytes after the structure`,
    });
  }
  return dest;
}

/**
 * Wire bytes of an ESYS output structure; frees the ESYS allocation either way. With `secret`
 * the scratch buffer is zeroed (ESYS's own allocation is freed by Esys_Free, which cannot).
 */
export function takeWire(type: MuType, ptr: NativePointer | null, opts: { secret?: boolean } = {}): Uint8Array {
  if (ptr === null) throw new SextantError({ code: 'TPM_TSS', message: `${type}: ESYS returned no structure` });
  const out = Buffer.alloc(WIRE_BYTES);
  try {
    const offset = [0];
    const rc = tss().marshal[type](ptr, out, out.length, offset) as number;
    if (rc !== 0) throw new SextantError({ code: 'TPM_TSS', message: `${type}: libtss2-mu could not marshal it (${tssRcName(rc)})` });
    return Uint8Array.from(out.subarray(0, Number(offset[0])));
  } finally {
    if (opts.secret) out.fill(0);
    freeEsys(ptr);
  }
}

export function freeEsys(...ptrs: (NativePointer | null | undefined)[]): void {
  for (const p of ptrs) if (p) tss().esys.Esys_Free(p);
}
