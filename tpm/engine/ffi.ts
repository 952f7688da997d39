/**
 * koffi bindings to the tpm2-tss TCTI loader, and nothing else of tpm2-tss: the loader opens
 * the TCTI a string names (device, swtpm, mssim, tabrmd), and the context it returns carries
 * the TCTI's transmit and receive functions (tss2_tcti.h defines Tss2_Tcti_Transmit and
 * Tss2_Tcti_Receive as macros that call through that table). Commands and responses are
 * plain bytes; every TPM structure is encoded in TypeScript (tpm/codec.ts).
 *
 * The library is loaded by soname, lazily, so importing the engine never fails on a machine
 * without tpm2-tss (the key service verifies with the pure-TS codec only).
 */
import koffi from 'koffi';
import { SextantError } from '../../lib/errors.js';

/** A C pointer as koffi hands it out (an opaque external value). */
export type NativePointer = { readonly __nativePointer: unique symbol };

/** A koffi function: called synchronously, or on a worker thread through `.async`. */
export interface NativeFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

type CType = ReturnType<typeof koffi.proto>;

export const TCTILDR_SONAME = 'libtss2-tctildr.so.0';

/**
 * TSS2_TCTI_CONTEXT_COMMON_V1 (tss2_tcti.h): uint64_t magic, uint32_t version, then function
 * pointers transmit, receive, finalize, cancel, getPollHandles, setLocality (v2 adds
 * makeSticky). On LP64 the first pointer sits at offset 16.
 */
const TRANSMIT_OFFSET = 16;
const RECEIVE_OFFSET = 24;

export interface TctiFunctions {
  /** TSS2_RC transmit(ctx, size_t size, const uint8_t *command). */
  transmit: NativeFunction;
  /** TSS2_RC receive(ctx, size_t *size, uint8_t *response, int32_t timeout). */
  receive: NativeFunction;
}

interface Loader {
  initialize: NativeFunction;
  finalize: NativeFunction;
  transmitProto: CType;
  receiveProto: CType;
}

let loaded: Loader | undefined;

/** The bound loader; TPM_UNAVAILABLE when tpm2-tss's TCTI loader is not installed. */
export function tctiLoader(): Loader {
  if (loaded) return loaded;
  // tpm2-tss logs warnings to stderr by itself; the engine reports errors as typed exceptions
  // instead. TSS2_LOG set by the user (e.g. `tcti+debug`) still wins.
  process.env.TSS2_LOG ??= 'all+none';
  let lib;
  try {
    lib = koffi.load(TCTILDR_SONAME);
  } catch (cause) {
    throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `tpm2-tss's TCTI loader is not installed (${TCTILDR_SONAME}): ${(cause as Error).message}`, cause });
  }
  loaded = {
    initialize: lib.func('uint32_t Tss2_TctiLdr_Initialize(const char *nameConf, _Out_ void **context)') as NativeFunction,
    finalize: lib.func('void Tss2_TctiLdr_Finalize(_Inout_ void **context)') as NativeFunction,
    transmitProto: koffi.proto('uint32_t SextantTctiTransmit(void *ctx, size_t size, const uint8_t *command)'),
    receiveProto: koffi.proto('uint32_t SextantTctiReceive(void *ctx, _Inout_ size_t *size, uint8_t *response, int32_t timeout)'),
  };
  return loaded;
}

/** The transmit and receive functions of an initialized TCTI context. */
export function tctiFunctions(ctx: NativePointer): TctiFunctions {
  const l = tctiLoader();
  const fn = (offset: number, proto: CType) => koffi.decode(koffi.decode(ctx, offset, 'void *'), proto) as NativeFunction;
  return { transmit: fn(TRANSMIT_OFFSET, l.transmitProto), receive: fn(RECEIVE_OFFSET, l.receiveProto) };
}
