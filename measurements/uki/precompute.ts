import { closeSync } from 'node:fs';
import os from 'node:os';
import { hash, toHex, type HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { extendAll } from '../pcr/extend.js';
import { authenticodeRanges, type ByteRange } from '../pe/authenticode.js';
import { parsePe, sectionMemory } from '../pe/parse.js';
import { cpioLiteral } from './cpio.js';
import { PARALLEL_THRESHOLD, runJobsSync, type DigestJob } from './digest-jobs.js';
import { fileJobs, hashFileJobs, openRegularFile, readPlanView, readRange, startDigestWorker } from './file-hasher.js';
import { parseUki, type StubInfo, type Uki } from './sections.js';
import { mangleStubCmdline, stubModel, type StubModel } from './stub-model.js';

/** One predicted measurement: what the event log of a correct boot holds for it. */
export interface PcrEvent {
  pcr: number;
  type: string;
  /** Lowercase hex digest in the prediction's bank. */
  digest: string;
  description: string;
}

export interface UkiPrediction {
  bank: HashAlg;
  /** Final PCR values, lowercase hex, for PCRs 4, 9, 11, 12, 13. */
  pcrs: Record<string, string>;
  events: PcrEvent[];
  stub: StubInfo & {
    /** The major whose model made the prediction (the detected one unless overridden). */
    modelled: number;
    /** Whether that model was checked against a real boot or read from systemd's sources. */
    provenance: StubModel['provenance'];
    /** What this stub may measure beyond the prediction, on some platforms or ESPs. */
    caveats: string[];
  };
}

export const SYSTEMD_PHASES = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready', 'shutdown', 'final'] as const;

export interface PrecomputeOptions {
  bank?: HashAlg;
  /** systemd-pcrphase strings extended into PCR 11 after the stub, in order (e.g. enter-initrd, leave-initrd, sysinit, ready). */
  phases?: readonly string[];
  /** Override the stub version detected from .sdmagic. */
  stubMajor?: number;
  /**
   * With Secure Boot on, the stub's LoadImage of the kernel was not measured again into PCR 4
   * (seen with the 252 stub); off (the default) it is.
   */
  secureBoot?: boolean;
  /**
   * What a >= 261 stub appends to a command line without console= on the target platform, e.g.
   * `console=uart,io,0x3f8 console=tty0` (seen with 262 on QEMU q35 with a serial port and VGA).
   */
  stubConsole?: string;
}

export const PREDICTED_PCRS = [4, 9, 11, 12, 13] as const;

const EFI_ACTION_BOOT_OPTION = 'Calling EFI Application from Boot Option';

const HAS_CONSOLE = /(^|\s)console=/;

/** The command line the stub hands the kernel as LoadOptions: UTF-16LE with its NUL. */
export function stubLoadOptions(cmdline: Uint8Array, model: StubModel, stubConsole?: string): Buffer | undefined {
  const nul = cmdline.indexOf(0);
  let text = Buffer.from(cmdline.subarray(0, nul < 0 ? cmdline.length : nul)).toString('utf8');
  if (model.mangleCmdline) text = mangleStubCmdline(text);
  if (model.appendsConsole && stubConsole && !HAS_CONSOLE.test(text)) text = text === '' ? stubConsole : `${text} ${stubConsole}`;
  // 257 passes no LoadOptions for an empty command line; 252 only when the section is absent.
  if (model.mangleCmdline && text === '') return undefined;
  return Buffer.from(text + '\0', 'utf16le');
}

/**
 * The pieces of the initrd the stub hands the kernel through LINUX_INITRD_MEDIA: (.ucode,)
 * .initrd, then one generated cpio per embedded file. With more than one piece each is padded
 * to 4 bytes (systemd's combine_initrds); a single piece goes as is.
 */
export function stubInitrdPieces(uki: Uki, model: StubModel): { pieces: Uint8Array[]; initrd: Uint8Array | undefined } {
  const parts: Uint8Array[] = [];
  let initrd: Uint8Array | undefined;
  const ucode = uki.sections.get('.ucode');
  if (ucode && model.measuredSections.includes('.ucode')) parts.push(sectionMemory(uki.bytes, ucode));
  const base = uki.sections.get('.initrd');
  if (base) parts.push((initrd = sectionMemory(uki.bytes, base)));
  for (const c of model.embeddedCpios) {
    const s = uki.sections.get(c.section);
    if (s) parts.push(cpioLiteral(sectionMemory(uki.bytes, s), { dir: '.extra', fileName: c.fileName }));
  }
  if (parts.length <= 1) return { pieces: parts, initrd };
  const pieces: Uint8Array[] = [];
  for (const p of parts) {
    pieces.push(p);
    if (p.length % 4) pieces.push(new Uint8Array(4 - (p.length % 4)));
  }
  return { pieces, initrd };
}

/** An event whose digest is known now, or will be read from a digest job. */
type PlannedEvent = Omit<PcrEvent, 'digest'> & { digest: Buffer | { job: number; at: number } };

interface Plan {
  events: PlannedEvent[];
  jobs: DigestJob[];
  stub: UkiPrediction['stub'];
}

/**
 * Lays out what a direct firmware boot measures: small digests are computed on the spot, every
 * large byte range becomes a digest job, hashed once. The .initrd stream serves PCR 11 and,
 * continued with the stub's cpio archives, PCR 9's initrd digest.
 */
function planUki(bytes: Uint8Array, alg: HashAlg, opts: PrecomputeOptions): Plan {
  const uki = parseUki(bytes);
  const modelledMajor = opts.stubMajor ?? uki.stub.major;
  const model = stubModel(modelledMajor);
  const events: PlannedEvent[] = [];
  const jobs: DigestJob[] = [];
  const job = (pieces: Uint8Array[], checkpoints = [pieces.length]): number => jobs.push({ pieces, checkpoints }) - 1;
  const ev = (pcr: number, type: string, digest: PlannedEvent['digest'], description: string): void => {
    events.push({ pcr, type, digest, description });
  };
  const ranges = (b: Uint8Array, rs: ByteRange[]): Uint8Array[] => rs.map((r) => b.subarray(r.start, r.end));

  // PCR 4: the boot manager's action and separator, then each PE image the firmware loads.
  ev(4, 'EV_EFI_ACTION', hash(alg, Buffer.from(EFI_ACTION_BOOT_OPTION, 'ascii')), EFI_ACTION_BOOT_OPTION);
  ev(4, 'EV_SEPARATOR', hash(alg, new Uint8Array(4)), 'separator');
  ev(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', { job: job(ranges(bytes, authenticodeRanges(uki.pe))), at: 0 }, 'UKI (Authenticode)');
  const linux = sectionMemory(bytes, uki.sections.get('.linux')!);
  if (model.kernelViaLoadImage && !opts.secureBoot) {
    let kernelPe;
    try {
      kernelPe = parsePe(linux);
    } catch (cause) {
      throw new SextantError({ code: 'UKI_MALFORMED', message: 'the .linux section is not a PE image (an EFI-stub kernel)', cause });
    }
    const digest = { job: job(ranges(linux, authenticodeRanges(kernelPe))), at: 0 };
    ev(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', digest, '.linux kernel loaded by the stub via LoadImage (Authenticode)');
  }

  // The initrd the kernel receives; when it starts with the .initrd section, one stream does both.
  const { pieces, initrd: initrdBytes } = stubInitrdPieces(uki, model);
  let initrdJob: number | undefined;
  if (initrdBytes && pieces[0] === initrdBytes) initrdJob = job(pieces, [1, pieces.length]);

  // PCR 11: the stub's section measurements, then systemd-pcrphase.
  for (const name of model.measuredSections) {
    const s = uki.sections.get(name);
    if (!s) continue;
    ev(11, 'EV_IPL', hash(alg, Buffer.from(name + '\0', 'latin1')), name);
    const mem = name === '.initrd' && initrdBytes ? initrdBytes : sectionMemory(bytes, s);
    const digest = name === '.initrd' && initrdJob !== undefined ? { job: initrdJob, at: 0 } : mem.length >= 1 << 20 ? { job: job([mem]), at: 0 } : hash(alg, mem);
    ev(11, 'EV_IPL', digest, `${name} content (${s.virtualSize} bytes)`);
  }
  for (const phase of opts.phases ?? []) {
    ev(11, 'SYSTEMD_PCRPHASE', hash(alg, Buffer.from(phase, 'utf8')), `systemd-pcrphase ${phase}`);
  }

  // PCR 9: the kernel's EFI stub measures its command line and the initrd it receives.
  const cmdline = uki.sections.get('.cmdline');
  const loadOptions = cmdline ? stubLoadOptions(sectionMemory(bytes, cmdline), model, opts.stubConsole) : undefined;
  if (loadOptions) ev(9, 'EV_EVENT_TAG', hash(alg, loadOptions), 'LOADED_IMAGE::LoadOptions');
  if (pieces.length > 0) {
    ev(9, 'EV_EVENT_TAG', initrdJob !== undefined ? { job: initrdJob, at: 1 } : { job: job(pieces), at: 0 }, 'Linux initrd');
  }
  return { events, jobs, stub: { ...uki.stub, modelled: modelledMajor, provenance: model.provenance, caveats: stubCaveats(model, loadOptions) } };
}

/** What the prediction assumes about the platform, for this stub and this command line. */
function stubCaveats(model: StubModel, loadOptions: Buffer | undefined): string[] {
  const caveats = [...model.platformMeasurements];
  const cmdline = loadOptions?.toString('utf16le') ?? '';
  if (model.appendsConsole && !HAS_CONSOLE.test(cmdline)) {
    caveats.unshift(
      'PCR 9: .cmdline has no console=, and this stub appends one for the console it detects (serial, VirtIO or graphics): the predicted PCR 9 holds for a platform where it appends none; put console= into .cmdline to make PCR 9 platform-independent',
    );
  }
  return caveats;
}

function finish(plan: Plan, results: Buffer[][], alg: HashAlg): UkiPrediction {
  const events: PcrEvent[] = plan.events.map((e) => ({
    pcr: e.pcr,
    type: e.type,
    digest: toHex(Buffer.isBuffer(e.digest) ? e.digest : results[e.digest.job][e.digest.at]),
    description: e.description,
  }));
  const pcrs: Record<string, string> = {};
  for (const pcr of PREDICTED_PCRS) {
    pcrs[String(pcr)] = toHex(extendAll(alg, events.filter((e) => e.pcr === pcr).map((e) => Buffer.from(e.digest, 'hex'))));
  }
  // stable sort: events keep their measuring order within a PCR
  return { bank: alg, pcrs, events: events.sort((a, b) => a.pcr - b.pcr), stub: plan.stub };
}

/**
 * Predicts PCRs 4, 9, 11, 12 and 13 of a UKI booted directly by UEFI firmware (as
 * EFI/BOOT/BOOTX64.EFI), with every event that leads there. Hashes on the calling thread.
 */
export function precomputeUki(bytes: Uint8Array, opts: PrecomputeOptions = {}): UkiPrediction {
  const alg = opts.bank ?? 'sha256';
  const plan = planUki(bytes, alg, opts);
  return finish(plan, runJobsSync(alg, plan.jobs), alg);
}

/**
 * A second thread only pays for its start-up (a Node isolate: tens of ms of CPU) when it gets a
 * core of its own. On a host busier than its core count, and with Linux's autogroup scheduling
 * every thread of this process shares one share, the worker made a 68 MiB UKI slower (830 ms
 * against 537 ms single-threaded at load 29 on 2 cores), so it is used only below that load.
 */
function coreLikelyFree(): boolean {
  return os.loadavg()[0] < os.availableParallelism() - 0.5;
}

/**
 * precomputeUki for a file, in one pass and without holding the file: the parts the plan reads
 * are read where they lie, then one pass over the file feeds every digest (file-hasher.ts); for
 * large files on a host with a free core, a worker started before anything else (its start-up
 * overlaps with the planning) claims digests too. Each byte range is hashed once per digest.
 * A UKI that does not fit that shape is read whole and hashed as precomputeUki does. `threads`
 * overrides the choice (for tests and benchmarks); the prediction is the same either way.
 */
export async function precomputeUkiFile(file: string, opts: PrecomputeOptions & { threads?: 1 | 2 } = {}): Promise<UkiPrediction> {
  const alg = opts.bank ?? 'sha256';
  const { fd, size } = openRegularFile(file);
  const two = opts.threads === undefined ? size >= PARALLEL_THRESHOLD && coreLikelyFree() : opts.threads === 2;
  const worker = two ? startDigestWorker() : undefined;
  try {
    const view = readPlanView(fd, size, file);
    const plan = view && planUki(view, alg, opts);
    if (!plan) {
      const bytes = new Uint8Array(size);
      readRange(fd, bytes, 0, size, file);
      return precomputeUki(bytes, opts);
    }
    const digests = await hashFileJobs(fd, size, alg, fileJobs(plan.jobs, view), worker);
    return finish(plan, digests.map((d) => d.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength))), alg);
  } finally {
    // Not awaited: stopping a worker still starting up can take longer than the whole job.
    if (worker) void worker.terminate();
    closeSync(fd);
  }
}
