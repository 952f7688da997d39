/**
 * The TPM as the agent, the key service and the CLI use it: one TCTI connection per TCTI per
 * process (tpm/engine, a byte transport), shared by every caller, with every operation queued
 * so commands never interleave. Every command is a typed command object (tpm/commands)
 * encoded and decoded in TypeScript. Objects created here are flushed by the operation that
 * created them, in `finally` (`withPrimary`), and objects left by crashed processes are
 * flushed when a connection opens.
 */
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { marshal } from '../codec.js';
import { execute, type TpmTransport } from '../commands/command.js';
import { getRandom as getRandomCommand } from '../commands/get-random.js';
import { quote as quoteCommand } from '../commands/quote.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, hashAlgName } from '../constants.js';
import { akTemplate, ekTemplateEccP256, ekTemplateRsa2048 } from '../ek/templates.js';
import { resolveTcti } from '../engine/tcti.js';
import { TctiTransport } from '../engine/transport.js';
import { pcrSelection, type PcrSelectionMap } from '../pcr-selection.js';
import { TPMT_SIGNATURE, type TpmtPublic, type TpmtSigScheme } from '../structures.js';
import { activateCredential, type ActivateCredentialInput } from './activate.js';
import { flushLeftovers, getCapability, sessionHandles, transientHandles, nvIndexHandles } from './capability.js';
import { createPrimary, flushContext, readPublic, type Hierarchy, type LoadedKey } from './keys.js';
import { nvRead, nvReadPublic, nvWrite, type NvPublic } from './nv.js';
import { pcrEvent, pcrExtend, pcrRead, type DigestsByBank } from './pcrs.js';
import { saltKeyFor, withSaltedSession } from './session.js';
import { ObjectSlots } from './slots.js';

export type { LoadedKey, Hierarchy, DigestsByBank, NvPublic, ActivateCredentialInput };

export interface QuoteInput {
  qualifyingData: Uint8Array;
  pcrs: PcrSelectionMap;
  /** Default TPM_ALG_NULL: the key's own scheme (the AK's is ECDSA with SHA-256). */
  scheme?: TpmtSigScheme;
}

export interface QuoteOutput {
  /** TPMS_ATTEST bytes exactly as signed (`tpm2_quote -m`). */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes (`tpm2_quote -s`). */
  signature: Uint8Array;
}

export type EkKind = 'rsa' | 'ecc';

export interface OpenOptions {
  /** TCTI string; default $SEXTANT_TCTI, else device:/dev/tpmrm0. */
  tcti?: string;
  /** Flush transient objects left by dead processes when the context is first opened (default true). */
  flushLeftovers?: boolean;
  log?: (line: string) => void;
}

interface Shared {
  transport: TctiTransport;
  users: number;
  slots: ObjectSlots;
  /** The `contexts` entry this connection came from. */
  entry?: Promise<Shared>;
  nvBufferMax?: number;
}

/** The PC Client floor for TPM_PT_HR_TRANSIENT_MIN (and what swtpm has). */
const MIN_TRANSIENT_OBJECTS = 3;

export interface PrimarySpec {
  hierarchy: Hierarchy;
  template: TpmtPublic;
}

/** Connections by TCTI string: one per TPM per process (a promise while it opens). */
const contexts = new Map<string, Promise<Shared>>();

/** Connects and cleans up after dead processes; `users` is 0 until `open` counts itself. */
async function connect(tcti: string, opts: OpenOptions): Promise<Shared> {
  const transport = await TctiTransport.open(tcti);
  const shared: Shared = { transport, users: 0, slots: new ObjectSlots(MIN_TRANSIENT_OBJECTS) };
  const run = <T>(job: (t: TpmTransport) => Promise<T>) => transport.queue.run(() => job(transport));
  try {
    if (opts.flushLeftovers !== false) {
      const flushed = await run((t) => flushLeftovers(t));
      if (flushed.length) opts.log?.(`tpm: flushed ${flushed.length} transient object(s) left by an earlier process`);
    }
    const pages = await run((t) => getCapability(t, TPM_CAP.TPM_PROPERTIES, TPM_PT.HR_TRANSIENT_MIN, 1));
    const slots = pages.flatMap((p) => (p.capability === TPM_CAP.TPM_PROPERTIES ? p.tpmProperties : [])).find((p) => p.property === TPM_PT.HR_TRANSIENT_MIN)?.value;
    if (slots && slots > MIN_TRANSIENT_OBJECTS) shared.slots = new ObjectSlots(slots);
  } catch (e) {
    await run(async () => transport.close());
    throw e;
  }
  return shared;
}

export class Tpm {
  private released = false;

  private constructor(private readonly shared: Shared) {}

  /** Opens (or joins) this process's context for the TCTI. Every `open` needs one `close`. */
  static async open(opts: OpenOptions = {}): Promise<Tpm> {
    const tcti = resolveTcti(opts.tcti);
    for (;;) {
      let pending = contexts.get(tcti);
      if (!pending) {
        pending = connect(tcti, opts);
        contexts.set(tcti, pending);
        pending.catch(() => contexts.get(tcti) === pending && contexts.delete(tcti));
      }
      const shared = await pending;
      // The last user may have closed it while this caller waited: connect again.
      if (shared.transport.closed) continue;
      shared.entry = pending;
      shared.users++;
      return new Tpm(shared);
    }
  }

  get tcti(): string {
    return this.shared.transport.tcti;
  }

  /** Leaves the shared context; the last user finalizes it after every queued job is done. */
  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const shared = this.shared;
    if (--shared.users > 0) return;
    if (contexts.get(shared.transport.tcti) === shared.entry) contexts.delete(shared.transport.tcti);
    await shared.transport.queue.run(async () => shared.transport.close());
  }

  /**
   * Runs one queued job on the connection: the building block of every method below. The
   * transport `job` gets sends only while the job runs.
   */
  run<T>(job: (t: TpmTransport) => Promise<T>): Promise<T> {
    if (this.released) return Promise.reject(new SextantError({ code: 'TPM_UNAVAILABLE', message: 'this TPM handle was closed' }));
    const transport = this.shared.transport;
    return transport.queue.run(() => job(transport));
  }

  // ---- capabilities -------------------------------------------------------------------

  /** TPM handles of the transient objects currently loaded. */
  transientHandles(): Promise<number[]> {
    return this.run((e) => transientHandles(e));
  }

  /** TPM handles of the sessions currently held by the TPM. */
  sessionHandles(): Promise<number[]> {
    return this.run((e) => sessionHandles(e));
  }

  /** The NV indices defined in [first, last]. */
  nvIndices(first: number, last: number): Promise<number[]> {
    return this.run((e) => nvIndexHandles(e, first, last));
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

  /** Random bytes from the TPM, up to one digest's worth per command. */
  getRandom(count: number): Promise<Uint8Array> {
    return this.run(async (t) => {
      const result = new Uint8Array(count);
      for (let filled = 0; filled < count; ) {
        const { randomBytes } = await execute(t, getRandomCommand, { bytesRequested: Math.min(count - filled, 32) });
        if (randomBytes.length === 0) throw new SextantError({ code: 'TPM_RC', message: 'TPM2_GetRandom returned no bytes' });
        result.set(randomBytes.subarray(0, count - filled), filled);
        filled += randomBytes.length;
        randomBytes.fill(0);
      }
      return result;
    });
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

  /**
   * PCR_Event with `data` encrypted on the bus: authorized by an HMAC session salted to the
   * EK (to its certificate's key when given), decrypt attribute, response HMAC checked.
   */
  pcrEventProtected(pcr: number, data: Uint8Array, ek: { kind: EkKind; certificate?: Uint8Array }): Promise<DigestsByBank> {
    return this.withEk(ek.kind, (key) =>
      this.run((t) => withSaltedSession(t, saltKeyFor(key, ek.certificate), (session) => pcrEvent(t, pcr, data, { session, use: { decrypt: true } }))),
    );
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

  readPublic(handle: number): ReturnType<typeof readPublic> {
    return this.run((e) => readPublic(e, handle));
  }

  flush(handle: number): Promise<void> {
    return this.run((e) => flushContext(e, handle));
  }

  // ---- attestation --------------------------------------------------------------------

  /**
   * TPM2_Quote (Part 3 §18.4): the TPM signs a TPMS_ATTEST holding the qualifying data (the
   * verifier's nonce) and the digest of the selected PCRs, with a restricted signing key.
   */
  quote(key: number, input: QuoteInput): Promise<QuoteOutput> {
    return this.run(async (t) => {
      const out = await execute(t, quoteCommand, {
        signHandle: key,
        qualifyingData: input.qualifyingData,
        inScheme: input.scheme ?? { scheme: TPM_ALG.NULL },
        PCRselect: pcrSelection(input.pcrs),
      });
      return { attest: out.quoted.raw!, signature: marshal(TPMT_SIGNATURE, out.signature) };
    });
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
    return this.run((t) => nvReadPublic(t, nvIndex));
  }

  /** The whole contents of an NV index, read in chunks of at most TPM_PT_NV_BUFFER_MAX. */
  async nvReadAll(nvIndex: number): Promise<{ public: NvPublic; data: Uint8Array }> {
    const chunk = await this.nvBufferMax();
    return this.run(async (t) => {
      const pub = await nvReadPublic(t, nvIndex);
      return { public: pub, data: await nvRead(t, nvIndex, pub.dataSize, chunk) };
    });
  }

  /** Writes `data` at offset 0 of an index, authorized by the owner hierarchy (empty password) unless `auth` names the index. */
  async nvWrite(nvIndex: number, data: Uint8Array, auth: 'owner' | 'index' = 'owner'): Promise<void> {
    const chunk = await this.nvBufferMax();
    await this.run((t) => nvWrite(t, auth === 'owner' ? TPM_RH.OWNER : nvIndex, nvIndex, data, chunk));
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
