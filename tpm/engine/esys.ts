/**
 * One ESYS context bound to one TCTI. It only issues calls; the caller (engine.ts) must hold
 * the context's queue: `call` refuses to run outside a queue job, so no two ESYS calls can
 * ever overlap (overlap is what produces TSS2_ESYS_RC_BAD_SEQUENCE). Each call runs on a
 * koffi worker thread, so a slow TPM never blocks the event loop.
 */
import { SextantError } from '../../lib/errors.js';
import { tss, type EsysFunctionName, type NativePointer } from './ffi.js';
import { esysError } from './errors.js';
import { SerialQueue } from './queue.js';

/**
 * An ESYS resource handle (ESYS_TR): an index into the ESYS context's object table, NOT a TPM
 * handle. The TPM handle of a transient object (0x80xxxxxx) is never exposed by the engine.
 */
export type EsysTr = number & { readonly __esysTr: unique symbol };

export const ESYS_TR = {
  NONE: 0xfff as EsysTr,
  PASSWORD: 0x0ff as EsysTr,
  RH_OWNER: 0x101 as EsysTr,
  RH_NULL: 0x107 as EsysTr,
  RH_LOCKOUT: 0x10a as EsysTr,
  RH_ENDORSEMENT: 0x10b as EsysTr,
  RH_PLATFORM: 0x10c as EsysTr,
  /** ESYS_TR_PCR0..31 are 0..31. */
  pcr: (index: number): EsysTr => index as EsysTr,
} as const;

/** An output parameter slot: koffi writes the C out-value into element 0. */
export type Out<T> = [T | null];
export function out<T = NativePointer>(): Out<T> {
  return [null];
}

export class EsysContext {
  readonly queue = new SerialQueue();
  private ctx: NativePointer | null;
  private tctiCtx: NativePointer | null;

  private constructor(
    readonly tcti: string,
    ctx: NativePointer,
    tctiCtx: NativePointer,
  ) {
    this.ctx = ctx;
    this.tctiCtx = tctiCtx;
  }

  /** Loads the TCTI and initializes ESYS on it (Tss2_TctiLdr_Initialize + Esys_Initialize). */
  static open(tcti: string): EsysContext {
    const lib = tss();
    const tctiOut = out();
    const rc1 = lib.tctiInitialize(tcti, tctiOut) as number;
    if (rc1 !== 0 || tctiOut[0] === null) {
      throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `cannot open TCTI "${tcti}"`, cause: esysError('Tss2_TctiLdr_Initialize', rc1) });
    }
    const ctxOut = out();
    const rc2 = lib.esys.Esys_Initialize(ctxOut, tctiOut[0], null) as number;
    if (rc2 !== 0 || ctxOut[0] === null) {
      lib.tctiFinalize(tctiOut);
      throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `cannot initialize ESYS on "${tcti}"`, cause: esysError('Esys_Initialize', rc2) });
    }
    return new EsysContext(tcti, ctxOut[0], tctiOut[0]);
  }

  get closed(): boolean {
    return this.ctx === null;
  }

  /**
   * Calls `fn(ctx, ...args)` on a worker thread and throws a typed error for a non-zero
   * TSS2_RC. Output slots in `args` are filled when the promise resolves.
   */
  call(fn: EsysFunctionName, ...args: unknown[]): Promise<void> {
    const ctx = this.checkUsable(fn);
    return new Promise((resolve, reject) => {
      tss().esys[fn].async(ctx, ...args, (err: unknown, rc: number) => {
        if (err) reject(new SextantError({ code: 'TPM_TSS', message: `${fn}: koffi call failed`, cause: err }));
        else if (rc !== 0) reject(esysError(fn, rc));
        else resolve();
      });
    });
  }

  /** The same for ESYS calls that never reach the TPM (bookkeeping on the context only). */
  callLocal(fn: EsysFunctionName, ...args: unknown[]): void {
    const ctx = this.checkUsable(fn);
    const rc = tss().esys[fn](ctx, ...args) as number;
    if (rc !== 0) throw esysError(fn, rc);
  }

  /** Finalizes ESYS and the TCTI (closes the connection). Idempotent. */
  close(): void {
    if (this.ctx === null) return;
    const lib = tss();
    lib.esys.Esys_Finalize([this.ctx]);
    if (this.tctiCtx !== null) lib.tctiFinalize([this.tctiCtx]);
    this.ctx = null;
    this.tctiCtx = null;
  }

  private checkUsable(fn: string): NativePointer {
    if (this.ctx === null) throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `${fn}: the TPM connection is closed` });
    if (!this.queue.insideJob) {
      throw new SextantError({ code: 'INTERNAL', message: `${fn} called outside the TPM queue (calls could overlap)` });
    }
    return this.ctx;
  }
}
