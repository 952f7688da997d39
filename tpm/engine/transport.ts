/**
 * The engine: one TCTI connection per TCTI string per process, as a byte transport. A command
 * goes out with the TCTI's transmit and its response comes back with receive, both on koffi
 * worker threads so a slow TPM never blocks the event loop. A TCTI carries one command at a
 * time, so every exchange runs inside a job of the connection's queue (queue.ts); `send`
 * outside a job is refused, which is what keeps two callers' commands from interleaving.
 */
import { SextantError } from '../../lib/errors.js';
import type { TpmTransport } from '../commands/command.js';
import { tctiFunctions, tctiLoader, type NativePointer, type TctiFunctions } from './ffi.js';
import { tssError } from './errors.js';
import { SerialQueue } from './queue.js';

/** TPM2 responses are at most TPM_PT_MAX_RESPONSE_SIZE (4096 on every TPM seen); room to spare. */
const RESPONSE_BYTES = 8192;
/** TSS2_TCTI_TIMEOUT_BLOCK: receive waits for the response however long the TPM takes. */
const TIMEOUT_BLOCK = -1;

export class TctiTransport implements TpmTransport {
  readonly queue = new SerialQueue();
  private ctx: NativePointer | null;
  private readonly fns: TctiFunctions;
  private readonly response = Buffer.alloc(RESPONSE_BYTES);

  private constructor(
    readonly tcti: string,
    ctx: NativePointer,
  ) {
    this.ctx = ctx;
    this.fns = tctiFunctions(ctx);
  }

  /**
   * Tss2_TctiLdr_Initialize: loads libtss2-tcti-NAME.so.0 and connects, on a worker thread
   * (a TCTI may talk to its TPM while it initializes; the event loop keeps running).
   */
  static async open(tcti: string): Promise<TctiTransport> {
    const out: [NativePointer | null] = [null];
    const rc = await new Promise<number>((resolve, reject) =>
      tctiLoader().initialize.async(tcti, out, (err: unknown, code: number) => (err ? reject(err) : resolve(code))),
    );
    if (rc !== 0 || out[0] === null) {
      throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `cannot open TCTI "${tcti}"`, cause: tssError('Tss2_TctiLdr_Initialize', rc) });
    }
    return new TctiTransport(tcti, out[0]);
  }

  get closed(): boolean {
    return this.ctx === null;
  }

  /** One command, one response. Only inside a job of `queue`. */
  async send(command: Uint8Array): Promise<Uint8Array> {
    const ctx = this.usable();
    await call(this.fns.transmit, 'Tss2_Tcti_Transmit', ctx, command.length, Buffer.from(command.buffer, command.byteOffset, command.byteLength));
    const size: [number] = [this.response.length];
    await call(this.fns.receive, 'Tss2_Tcti_Receive', ctx, size, this.response, TIMEOUT_BLOCK);
    const response = Uint8Array.from(this.response.subarray(0, size[0]));
    // Responses carry secrets (credentials, random bytes): the scratch buffer keeps none.
    this.response.fill(0, 0, size[0]);
    return response;
  }

  /** Tss2_TctiLdr_Finalize (closes the connection). Idempotent. */
  close(): void {
    if (this.ctx === null) return;
    tctiLoader().finalize([this.ctx]);
    this.ctx = null;
  }

  private usable(): NativePointer {
    if (this.ctx === null) throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `TCTI "${this.tcti}" is closed` });
    if (!this.queue.insideJob) throw new SextantError({ code: 'INTERNAL', message: 'a TPM command was sent outside the TPM queue (commands could interleave)' });
    return this.ctx;
  }
}

function call(fn: TctiFunctions['transmit'], name: string, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, rc: number) => {
      if (err) reject(new SextantError({ code: 'TPM_TSS', message: `${name}: koffi call failed`, cause: err }));
      else if (rc !== 0) reject(tssError(name, rc));
      else resolve();
    });
  });
}
