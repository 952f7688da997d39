/**
 * The TPM as the agent and the CLI use it: one ESYS context per TCTI per process, shared by
 * every caller, with every operation queued (queue.ts) so ESYS calls never overlap. Objects
 * the engine creates are flushed by the operation that created them, in `finally`
 * (`withPrimary`), and objects left by crashed processes are flushed when a context opens.
 */
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { TPM_CAP, TPM_PT, hashAlgName } from '../constants.js';
import { akTemplate, ekTemplateEccP256, ekTemplateRsa2048 } from '../ek/templates.js';
import type { PcrSelectionMap } from '../pcr-selection.js';
import type { TpmtPublic } from '../structures.js';
import { EsysContext, type EsysTr } from './esys.js';
import { ObjectSlots } from './slots.js';
import { resolveTcti } from './tcti.js';
import { activateCredential, type ActivateCredentialInput } from './commands/activate-credential.js';
import { createPrimary, readPublic, type Hierarchy, type LoadedKey } from './commands/create-primary.js';
import { flushContext } from './commands/flush-context.js';
import { flushLeftovers, sessionHandles, transientHandles } from './commands/flush-leftovers.js';
import { getCapability } from './commands/get-capability.js';
import { getRandom } from './commands/get-random.js';
import { nvRead, nvReadPublic, withTpmHandle, type NvPublic } from './commands/nv-read.js';
import { pcrEvent, pcrExtend, type DigestsByBank } from './commands/pcr-extend.js';
import { pcrRead } from './commands/pcr-read.js';
import { quote, type QuoteInput, type QuoteOutput } from './commands/quote.js';

export type { LoadedKey, Hierarchy, QuoteInput, QuoteOutput, DigestsByBank, NvPublic };
export type EkKind = 'rsa' | 'ecc';

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
  slots: ObjectSlots;
  nvBufferMax?: number;
}

/** The PC Client floor for TPM_PT_HR_TRANSIENT_MIN (and what swtpm has). */
const MIN_TRANSIENT_OBJECTS = 3;

export interface PrimarySpec {
  hierarchy: Hierarchy;
  template: TpmtPublic;
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
    shared = { esys: EsysContext.open(tcti), users: 1, slots: new ObjectSlots(MIN_TRANSIENT_OBJECTS) };
    contexts.set(tcti, shared);
    const tpm = new Tpm(shared);
    try {
      if (opts.flushLeftovers !== false) {
        const flushed = await tpm.run((e) => flushLeftovers(e));
        if (flushed.length) opts.log?.(`tpm: flushed ${flushed.length} transient object(s) left by an earlier process`);
      }
      const slots = (await tpm.properties(TPM_PT.HR_TRANSIENT_MIN, 1)).get(TPM_PT.HR_TRANSIENT_MIN);
      if (slots && slots > MIN_TRANSIENT_OBJECTS) shared.slots = new ObjectSlots(slots);
    } catch (e) {
      await tpm.close();
      throw e;
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

  /** Runs one queued job on the context: the building block of every method below. */
  run<T>(job: (esys: EsysContext) => Promise<T>): Promise<T> {
    if (this.released) return Promise.reject(new SextantError({ code: 'TPM_UNAVAILABLE', message: 'this TPM handle was closed' }));
    const esys = this.shared.esys;
    return esys.queue.run(() => job(esys));
  }

  // ---- capabilities -------------------------------------------------------------------

  /** TPM handles (not ESYS handles) of the transient objects currently loaded. */
  transientHandles(): Promise<number[]> {
    return this.run((e) => transientHandles(e));
  }

  /** TPM handles of the sessions currently held by the TPM. */
  sessionHandles(): Promise<number[]> {
    return this.run((e) => sessionHandles(e));
  }

  /** Tagged TPM properties (TPM_PT_*) from `first` on. */
  async properties(first: number, count = 256): Promise<Map<number, number>> {
    const pages = await this.run((e) => getCapability(e, TPM_CAP.TPM_PROPERTIES, first, count));
    const m = new Map<number, number>();
    for (const p of pages) if (p.capability === TPM_CAP.TPM_PROPERTIES) for (const { property, value } of p.tpmProperties) m.set(property, value);
    return m;
  }

  /** The PCR banks the TPM has allocated (with at least one PCR), as `{ sha256: [0..23] }`. */
  async pcrBanks(): Promise<PcrSelectionMap> {
    const pages = await this.run((e) => getCapability(e, TPM_CAP.PCRS, 0));
    const banks: Record<string, number[]> = {};
    for (const p of pages) {
      if (p.capability !== TPM_CAP.PCRS) continue;
      for (const s of p.assignedPCR) {
        const alg = hashAlgName(s.hash);
        const pcrs = [...s.pcrSelect].flatMap((bits, byte) => [0, 1, 2, 3, 4, 5, 6, 7].filter((b) => bits & (1 << b)).map((b) => byte * 8 + b));
        if (alg && pcrs.length) banks[alg] = pcrs;
      }
    }
    return banks;
  }

  getRandom(count: number): Promise<Uint8Array> {
    return this.run((e) => getRandom(e, count));
  }

  // ---- PCRs ---------------------------------------------------------------------------

  /** PCR values in the `PcrBanks` shape (lowercase hex by bank and index). */
  pcrRead(selection: PcrSelectionMap): Promise<PcrBanks> {
    return this.run((e) => pcrRead(e, selection));
  }

  /** Every PCR of every allocated bank. */
  async pcrReadAll(): Promise<PcrBanks> {
    return this.pcrRead(await this.pcrBanks());
  }

  pcrExtend(pcr: number, digests: DigestsByBank): Promise<void> {
    return this.run((e) => pcrExtend(e, pcr, digests));
  }

  /** TPM2_PCR_Event: the TPM hashes `data` per bank and extends; returns the digests. */
  pcrEvent(pcr: number, data: Uint8Array): Promise<DigestsByBank> {
    return this.run((e) => pcrEvent(e, pcr, data));
  }

  // ---- keys ---------------------------------------------------------------------------

  /**
   * Creates primary keys, runs `fn` with them and flushes them, whatever happens. Keys an
   * operation needs together are created together: their object slots are taken at once.
   */
  withPrimaries<T>(specs: readonly PrimarySpec[], fn: (keys: LoadedKey[]) => Promise<T>): Promise<T> {
    return this.shared.slots.with(specs.length, async () => {
      const keys: LoadedKey[] = [];
      try {
        for (const s of specs) keys.push(await this.run((e) => createPrimary(e, s.hierarchy, s.template)));
        return await fn(keys);
      } finally {
        for (const k of keys.reverse()) await this.run((e) => flushContext(e, k.handle));
      }
    });
  }

  withPrimary<T>(hierarchy: Hierarchy, template: TpmtPublic, fn: (key: LoadedKey) => Promise<T>): Promise<T> {
    return this.withPrimaries([{ hierarchy, template }], ([key]) => fn(key));
  }

  /** The endorsement key from the TCG default template (it matches the EK certificate). */
  withEk<T>(kind: EkKind, fn: (ek: LoadedKey) => Promise<T>): Promise<T> {
    return this.withPrimaries([ekSpec(kind)], ([ek]) => fn(ek));
  }

  /**
   * sextant's attestation key: a restricted ECC P-256 ECDSA-SHA256 primary key in the owner
   * hierarchy (as go-tpm-tools does). Deterministic: the same TPM gives the same AK until the
   * owner hierarchy is cleared, so nothing has to be persisted.
   */
  withAk<T>(fn: (ak: LoadedKey) => Promise<T>): Promise<T> {
    return this.withPrimary('owner', akTemplate(), fn);
  }

  /** EK and AK loaded together (credential activation needs both). */
  withEkAndAk<T>(kind: EkKind, fn: (ek: LoadedKey, ak: LoadedKey) => Promise<T>): Promise<T> {
    return this.withPrimaries([ekSpec(kind), { hierarchy: 'owner', template: akTemplate() }], ([ek, ak]) => fn(ek, ak));
  }

  readPublic(handle: EsysTr): ReturnType<typeof readPublic> {
    return this.run((e) => readPublic(e, handle));
  }

  flush(handle: EsysTr): Promise<void> {
    return this.run((e) => flushContext(e, handle));
  }

  // ---- attestation --------------------------------------------------------------------

  quote(key: EsysTr, input: QuoteInput): Promise<QuoteOutput> {
    return this.run((e) => quote(e, key, input));
  }

  /**
   * Decrypts a credential made (e.g. by the key service's MakeCredential) for `ek` and the
   * Name of `activate`; CREDENTIAL_ACTIVATION_FAILED if the TPM refuses it.
   */
  activateCredential(input: ActivateCredentialInput): Promise<Uint8Array> {
    return this.run((e) => activateCredential(e, input));
  }

  // ---- NV -----------------------------------------------------------------------------

  /** NV index metadata; TPM_RC_HANDLE when the index is not defined. */
  nvReadPublic(nvIndex: number): Promise<NvPublic> {
    return this.run((e) => withTpmHandle(e, nvIndex, (tr) => nvReadPublic(e, tr)));
  }

  /** The whole contents of an NV index, read in chunks of at most TPM_PT_NV_BUFFER_MAX. */
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
      const props = await this.properties(TPM_PT.NV_BUFFER_MAX, 1);
      // 512 bytes is the floor the PC Client profile guarantees.
      this.shared.nvBufferMax = props.get(TPM_PT.NV_BUFFER_MAX) ?? 512;
    }
    return this.shared.nvBufferMax;
  }
}

function ekSpec(kind: EkKind): PrimarySpec {
  return { hierarchy: 'endorsement', template: kind === 'rsa' ? ekTemplateRsa2048() : ekTemplateEccP256() };
}
