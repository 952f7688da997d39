/**
 * The TPM as the agent and the CLI use it: one ESYS context per TCTI per process, shared by
 * every caller, with every operation queued (see queue.ts). Objects the engine creates are
 * flushed by the operation that created them (`withPrimary`), in `finally`.
 */
import { SextantError } from '../../lib/errors.js';
import { EsysContext, type EsysTr } from './esys.js';
import { resolveTcti } from './tcti.js';
import { getCapability, TPM_CAP } from './commands/get-capability.js';
import { getRandom } from './commands/get-random.js';
import { flushContext } from './commands/flush-context.js';
import { flushLeftovers, transientHandles } from './commands/flush-leftovers.js';
import { nvRead, nvReadPublic, withTpmHandle, type NvPublic } from './commands/nv-read.js';
import type { PcrAllocation } from './capability.js';

/** TPM_PT values (Part 2 §6.13) the engine reads. */
const TPM_PT_NV_BUFFER_MAX = 0x12c;

export interface OpenOptions {
  /** TCTI string; default $SEXTANT_TCTI, else device:/dev/tpmrm0. */
  tcti?: string;
  /** Flush transient objects left by dead processes when the context is first opened (default true). */
  flushLeftovers?: boolean;
  log?: (line: string) => void;
}

interface Shared {
  esys: EsysContext;
  users: number;
  nvBufferMax?: number;
}

/** Contexts by TCTI string: one per TPM per process. */
const contexts = new Map<string, Shared>();

export class Tpm {
  private released = false;

  private constructor(private readonly shared: Shared) {}

  /** Opens (or joins) this process's context for the TCTI. Every `open` needs one `close`. */
  static async open(opts: OpenOptions = {}): Promise<Tpm> {
    const tcti = resolveTcti(opts.tcti);
    let shared = contexts.get(tcti);
    if (shared) {
      shared.users++;
      return new Tpm(shared);
    }
    shared = { esys: EsysContext.open(tcti), users: 1 };
    contexts.set(tcti, shared);
    const tpm = new Tpm(shared);
    if (opts.flushLeftovers !== false) {
      try {
        const flushed = await tpm.run((e) => flushLeftovers(e));
        if (flushed.length) opts.log?.(`tpm: flushed ${flushed.length} transient object(s) left by an earlier process`);
      } catch (e) {
        await tpm.close();
        throw e;
      }
    }
    return tpm;
  }

  get tcti(): string {
    return this.shared.esys.tcti;
  }

  /** Leaves the shared context; the last user finalizes it after every queued job is done. */
  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const shared = this.shared;
    if (--shared.users > 0) return;
    contexts.delete(shared.esys.tcti);
    await shared.esys.queue.run(async () => shared.esys.close());
  }

  /** Runs one queued job on the context; the building block of every method below. */
  run<T>(job: (esys: EsysContext) => Promise<T>): Promise<T> {
    if (this.released) return Promise.reject(new SextantError({ code: 'TPM_UNAVAILABLE', message: 'this TPM handle was closed' }));
    const esys = this.shared.esys;
    return esys.queue.run(() => job(esys));
  }

  getRandom(count: number): Promise<Uint8Array> {
    return this.run((e) => getRandom(e, count));
  }

  /** TPM handles of the transient objects currently loaded. */
  transientHandles(): Promise<number[]> {
    return this.run((e) => transientHandles(e));
  }

  /** Tagged TPM properties (TPM_PT_*) from `first` on. */
  async properties(first: number, count = 256): Promise<Map<number, number>> {
    const pages = await this.run((e) => getCapability(e, TPM_CAP.TPM_PROPERTIES, first, count));
    const m = new Map<number, number>();
    for (const p of pages) if (p.kind === 'properties') for (const { property, value } of p.properties) m.set(property, value);
    return m;
  }

  /** The PCR banks the TPM has allocated, with their PCR indices. */
  async pcrAllocation(): Promise<PcrAllocation[]> {
    const pages = await this.run((e) => getCapability(e, TPM_CAP.PCRS, 0));
    return pages.flatMap((p) => (p.kind === 'pcrs' ? p.banks.filter((b) => b.pcrs.length > 0) : []));
  }

  flush(handle: EsysTr): Promise<void> {
    return this.run((e) => flushContext(e, handle));
  }

  /** NV index metadata; TPM_RC_HANDLE when the index is not defined. */
  nvReadPublic(nvIndex: number): Promise<NvPublic> {
    return this.run((e) => withTpmHandle(e, nvIndex, (tr) => nvReadPublic(e, tr)));
  }

  /** The whole contents of an NV index. */
  async nvReadAll(nvIndex: number): Promise<{ public: NvPublic; data: Uint8Array }> {
    const chunk = await this.nvBufferMax();
    return this.run((e) =>
      withTpmHandle(e, nvIndex, async (tr) => {
        const pub = await nvReadPublic(e, tr);
        return { public: pub, data: await nvRead(e, tr, pub.dataSize, chunk) };
      }),
    );
  }

  private async nvBufferMax(): Promise<number> {
    if (this.shared.nvBufferMax === undefined) {
      const props = await this.properties(TPM_PT_NV_BUFFER_MAX, 1);
      // The spec floor is 512 bytes; a TPM that does not say gets the floor.
      this.shared.nvBufferMax = props.get(TPM_PT_NV_BUFFER_MAX) ?? 512;
    }
    return this.shared.nvBufferMax;
  }
}
