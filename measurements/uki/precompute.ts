import { createHash } from 'node:crypto';
import { hash, toHex, type HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { extendAll } from '../pcr/extend.js';
import { authenticodeRanges, hashRanges } from '../pe/authenticode.js';
import { parsePe, sectionMemory } from '../pe/parse.js';
import { cpioLiteral } from './cpio.js';
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
  stub: StubInfo & { modelled: number };
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
}

export const PREDICTED_PCRS = [4, 9, 11, 12, 13] as const;

const EFI_ACTION_BOOT_OPTION = 'Calling EFI Application from Boot Option';

/** The command line the stub hands the kernel as LoadOptions: UTF-16LE with its NUL. */
export function stubLoadOptions(cmdline: Uint8Array, model: StubModel): Buffer | undefined {
  const nul = cmdline.indexOf(0);
  let text = Buffer.from(cmdline.subarray(0, nul < 0 ? cmdline.length : nul)).toString('utf8');
  if (model.mangleCmdline) text = mangleStubCmdline(text);
  // 257 passes no LoadOptions for an empty command line; 252 only when the section is absent.
  if (model.mangleCmdline && text === '') return undefined;
  return Buffer.from(text + '\0', 'utf16le');
}

/**
 * The pieces of the initrd the stub hands the kernel through LINUX_INITRD_MEDIA: (.ucode,)
 * .initrd, then one generated cpio per embedded file. With more than one piece each is padded
 * to 4 bytes (systemd's combine_initrds); a single piece goes as is.
 */
export function stubInitrdPieces(uki: Uki, model: StubModel): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (const name of ['.ucode', '.initrd'] as const) {
    const s = uki.sections.get(name);
    if (s && (name === '.initrd' || model.measuredSections.includes(name))) pieces.push(sectionMemory(uki.bytes, s));
  }
  for (const c of model.embeddedCpios) {
    const s = uki.sections.get(c.section);
    if (s) pieces.push(cpioLiteral(sectionMemory(uki.bytes, s), { dir: '.extra', fileName: c.fileName }));
  }
  if (pieces.length <= 1) return pieces;
  const out: Uint8Array[] = [];
  for (const p of pieces) {
    out.push(p);
    if (p.length % 4) out.push(new Uint8Array(4 - (p.length % 4)));
  }
  return out;
}

/**
 * Predicts PCRs 4, 9, 11, 12 and 13 of a UKI booted directly by UEFI firmware (as
 * EFI/BOOT/BOOTX64.EFI), with every event that leads there.
 *
 * Each large byte range is hashed once where the measurements allow: the initrd stream feeds
 * both PCR 11's .initrd digest and (continued with the generated cpios) PCR 9's initrd digest.
 */
export function precomputeUki(bytes: Uint8Array, opts: PrecomputeOptions = {}): UkiPrediction {
  const alg = opts.bank ?? 'sha256';
  const uki = parseUki(bytes);
  const major = opts.stubMajor ?? uki.stub.major;
  const model = stubModel(major);
  const events: PcrEvent[] = [];
  const ev = (pcr: number, type: string, digest: Uint8Array, description: string): void => {
    events.push({ pcr, type, digest: toHex(digest), description });
  };

  // PCR 4: the boot manager's action and separator, then each PE image the firmware loads.
  ev(4, 'EV_EFI_ACTION', hash(alg, Buffer.from(EFI_ACTION_BOOT_OPTION, 'ascii')), EFI_ACTION_BOOT_OPTION);
  ev(4, 'EV_SEPARATOR', hash(alg, new Uint8Array(4)), 'separator');
  ev(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', hashRanges(alg, bytes, authenticodeRanges(uki.pe)), 'UKI (Authenticode)');
  const linux = sectionMemory(bytes, uki.sections.get('.linux')!);
  if (!opts.secureBoot) {
    let kernelPe;
    try {
      kernelPe = parsePe(linux);
    } catch (cause) {
      throw new SextantError({ code: 'UKI_MALFORMED', message: 'the .linux section is not a PE image (an EFI-stub kernel)', cause });
    }
    ev(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', hashRanges(alg, linux, authenticodeRanges(kernelPe)), '.linux kernel loaded by the stub via LoadImage (Authenticode)');
  }

  // PCR 11: the stub's section measurements; the initrd stream is shared with PCR 9.
  const initrd = uki.sections.get('.initrd');
  const initrdStream = initrd ? createHash(alg).update(sectionMemory(bytes, initrd)) : undefined;
  for (const name of model.measuredSections) {
    const s = uki.sections.get(name);
    if (!s) continue;
    ev(11, 'EV_IPL', hash(alg, Buffer.from(name + '\0', 'latin1')), name);
    const digest = name === '.initrd' && initrdStream ? initrdStream.copy().digest() : hash(alg, sectionMemory(bytes, s));
    ev(11, 'EV_IPL', digest, `${name} content (${s.virtualSize} bytes)`);
  }
  for (const phase of opts.phases ?? []) {
    ev(11, 'SYSTEMD_PCRPHASE', hash(alg, Buffer.from(phase, 'utf8')), `systemd-pcrphase ${phase}`);
  }

  // PCR 9: the kernel's EFI stub measures its command line and the initrd it receives.
  const cmdline = uki.sections.get('.cmdline');
  const loadOptions = cmdline ? stubLoadOptions(sectionMemory(bytes, cmdline), model) : undefined;
  if (loadOptions) ev(9, 'EV_EVENT_TAG', hash(alg, loadOptions), 'LOADED_IMAGE::LoadOptions');
  const pieces = stubInitrdPieces(uki, model);
  if (pieces.length > 0) {
    // Reuse the PCR 11 .initrd stream when the kernel's initrd starts with exactly those bytes.
    const sharesStream = initrdStream !== undefined && initrd !== undefined && pieces[0].length === initrd.virtualSize && !uki.sections.has('.ucode');
    const digest = sharesStream ? pieces.slice(1).reduce((h, p) => h.update(p), initrdStream).digest() : hash(alg, ...pieces);
    ev(9, 'EV_EVENT_TAG', digest, 'Linux initrd');
  }

  const pcrs: Record<string, string> = {};
  for (const pcr of PREDICTED_PCRS) {
    pcrs[String(pcr)] = toHex(extendAll(alg, events.filter((e) => e.pcr === pcr).map((e) => Buffer.from(e.digest, 'hex'))));
  }
  return { bank: alg, pcrs, events: [...events].sort((a, b) => a.pcr - b.pcr), stub: { ...uki.stub, modelled: model.major } };
}
