import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HASH_ALGS, type HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { authenticodeDigest } from '../../measurements/pe/authenticode.js';
import { parsePe, type PeSection } from '../../measurements/pe/parse.js';
import { precomputeUkiFile, type UkiPrediction } from '../../measurements/uki/precompute.js';
import { modelledStubs } from '../../measurements/uki/stub-model.js';
import { bool, str, type CommandContext, type CommandSpec, type OptionSpec } from '../command.js';
import { SECURE_BOOT_OPTIONS, secureBootFromOptions } from './secureboot-options.js';

/** --bank, one of HASH_ALGS (its `choices`, checked by cli/main.ts). */
function bankOption(v: CommandContext['values']): HashAlg {
  return (str(v, 'bank') ?? 'sha256') as HashAlg;
}

async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${file}: no such file`, cause });
    throw new SextantError({ code: 'IO_FAILED', message: `cannot read ${file}: ${(cause as Error).message}`, cause });
  }
}

const PREDICT_OPTIONS: Record<string, OptionSpec> = {
  bank: { type: 'string', choices: HASH_ALGS, description: 'PCR bank', default: 'sha256' },
  phases: { type: 'string', valueName: 'LIST', description: 'systemd-pcrphase phases extended into PCR 11, e.g. enter-initrd,leave-initrd,sysinit,ready' },
  stub: { type: 'string', valueName: 'VERSION', description: `treat the stub as this systemd major instead of reading .sdmagic (modelled: ${modelledStubs()})` },
  'secure-boot': { type: 'boolean', description: 'Secure Boot on: the kernel is not measured again into PCR 4' },
  'stub-console': {
    type: 'string',
    valueName: 'ARGS',
    description: 'console= arguments a >= 261 stub appends to a .cmdline without one on the target, e.g. "console=uart,io,0x3f8 console=tty0" (QEMU q35)',
  },
};

function predictOptions(v: CommandContext['values']) {
  const stub = str(v, 'stub');
  if (stub !== undefined && !/^\d+$/.test(stub)) throw new SextantError({ code: 'USAGE', message: '--stub takes a systemd major version, e.g. 252' });
  const phases = str(v, 'phases');
  return {
    bank: bankOption(v),
    phases: phases ? phases.split(',').map((p) => p.trim()).filter((p) => p !== '') : [],
    stubMajor: stub === undefined ? undefined : Number(stub),
    secureBoot: bool(v, 'secure-boot'),
    stubConsole: str(v, 'stub-console'),
  };
}

/** The contract shape: `pcrs` and `events` first (scripts rely on them), then context. */
function predictionJson(p: UkiPrediction) {
  return { pcrs: p.pcrs, events: p.events, bank: p.bank, stub: p.stub };
}

function renderPrediction(p: UkiPrediction): string {
  const lines = [`systemd-stub ${p.stub.version} (from ${p.stub.source}; modelled as ${p.stub.modelled}, from ${p.stub.provenance === 'boot' ? 'a real boot' : "systemd's sources"}), bank ${p.bank}`, ''];
  lines.push('PCR  value');
  for (const [pcr, v] of Object.entries(p.pcrs)) lines.push(`${pcr.padStart(3)}  ${v}`);
  lines.push('', 'PCR  type                              digest            description');
  for (const e of p.events) lines.push(`${String(e.pcr).padStart(3)}  ${e.type.padEnd(32)}  ${e.digest.slice(0, 16)}  ${e.description}`);
  if (p.stub.caveats.length > 0) lines.push('', 'Not predicted (depends on the platform or the ESP):', ...p.stub.caveats.map((c) => `  - ${c}`));
  return lines.join('\n');
}

const measureUki: CommandSpec<ReturnType<typeof predictionJson>> = {
  path: ['measure', 'uki'],
  args: 'FILE',
  summary: 'predict PCRs 4, 9, 11, 12, 13 of a UKI booted directly by UEFI firmware',
  description: `
Reads the UKI's systemd-stub version from .sdmagic and predicts what a boot of it as
EFI/BOOT/BOOTX64.EFI measures: PCR 4 (boot option action, separator, Authenticode of the UKI
and, for stubs up to 257, of the kernel the stub starts with LoadImage), PCR 9 (the kernel's
command line and initrd, including the cpios a >= 254 stub generates), PCR 11 (the stub's
sections, then --phases). PCR 12 and 13 stay zero. A stub newer than the newest modelled one
is refused (STUB_NOT_MODELLED); what the stub measures from the platform (SMBIOS into PCR 1,
files on the ESP) is listed as caveats, not predicted.
With --sb-keys or --ovmf-vars also PCR 7: SecureBoot, PK, KEK, db, dbx as the firmware measures
them, the separator, and with Secure Boot on the db entry that authorizes the UKI's signer
(SB_NOT_AUTHORIZED when none does: the firmware would refuse the UKI).`,
  options: { ...PREDICT_OPTIONS, ...SECURE_BOOT_OPTIONS },
  async run(ctx) {
    const sb = await secureBootFromOptions(ctx.values);
    const opts = predictOptions(ctx.values);
    if (sb) opts.secureBoot = sb.secureBoot;
    const p = await precomputeUkiFile(ctx.positionals[0], opts);
    if (!sb) return predictionJson(p);
    const { predictUkiPcr7, withPcr7 } = await import('../../measurements/secureboot/predict.js');
    return predictionJson(withPcr7(p, predictUkiPcr7(await readInput(ctx.positionals[0]), sb, p.bank)));
  },
  render: (r) => renderPrediction(r as UkiPrediction),
};

interface PeReport {
  file: string;
  format: string;
  authenticode: Record<string, string>;
  signed: boolean;
  sections: Pick<PeSection, 'name' | 'virtualSize' | 'virtualAddress' | 'sizeOfRawData' | 'pointerToRawData'>[];
}

const measurePe: CommandSpec<PeReport> = {
  path: ['measure', 'pe'],
  args: 'FILE',
  summary: 'Authenticode hash and section table of a PE/COFF file (EFI binary, UKI, kernel)',
  options: { bank: { type: 'string', choices: HASH_ALGS, description: 'hash (default: sha256 and sha384)' } },
  async run(ctx) {
    const bytes = await readInput(ctx.positionals[0]);
    const pe = parsePe(bytes);
    const algs: HashAlg[] = str(ctx.values, 'bank') ? [bankOption(ctx.values)] : ['sha256', 'sha384'];
    return {
      file: ctx.positionals[0],
      format: pe.format,
      authenticode: Object.fromEntries(algs.map((a) => [a, authenticodeDigest(bytes, a, pe).toString('hex')])),
      signed: pe.certificateTable !== undefined,
      sections: pe.sections.map(({ name, virtualSize, virtualAddress, sizeOfRawData, pointerToRawData }) => ({
        name,
        virtualSize,
        virtualAddress,
        sizeOfRawData,
        pointerToRawData,
      })),
    };
  },
  render(r) {
    const lines = [`${r.file}: ${r.format}${r.signed ? ', signed' : ''}`];
    for (const [a, h] of Object.entries(r.authenticode)) lines.push(`authenticode ${a}: ${h}`);
    lines.push('', 'section   VirtualSize  VirtualAddress  SizeOfRawData  PointerToRawData');
    for (const s of r.sections) {
      lines.push(`${s.name.padEnd(9)} ${String(s.virtualSize).padStart(11)}  0x${s.virtualAddress.toString(16).padStart(12, '0')}  ${String(s.sizeOfRawData).padStart(13)}  ${String(s.pointerToRawData).padStart(16)}`);
    }
    return lines.join('\n');
  },
};

const HOST_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

const measureExample: CommandSpec<ReturnType<typeof predictionJson> & { uki: Record<string, string> }> = {
  path: ['measure', 'example'],
  summary: "build a UKI from this host's Debian packages in a temp dir and predict its PCRs",
  description: `
Wraps the host's systemd-boot-efi stub, the newest /boot/vmlinuz-* and a tiny initrd into a UKI
with objcopy, predicts its PCRs like \`sextant measure uki\`, and removes the temp dir again.`,
  options: PREDICT_OPTIONS,
  async run(ctx) {
    const kernels = (await readdir('/boot').catch(() => [] as string[])).filter((f) => f.startsWith('vmlinuz-')).sort();
    if (kernels.length === 0) throw new SextantError({ code: 'FILE_NOT_FOUND', message: 'no /boot/vmlinuz-*: install linux-image-amd64' });
    await readFile(HOST_STUB).catch((cause) => {
      throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${HOST_STUB} missing: install systemd-boot-efi`, cause });
    });
    const kernel = path.join('/boot', kernels[kernels.length - 1]);
    const osrel = await readFile('/etc/os-release').catch(() => Buffer.from('ID=linux\n'));
    const work = await mkdtemp(path.join(tmpdir(), 'sextant-example-'));
    try {
      const out = path.join(work, 'example.efi');
      const [{ buildUki }, { cpioLiteral }] = await Promise.all([import('../../measurements/uki/build.js'), import('../../measurements/uki/cpio.js')]);
      const initrd = cpioLiteral(Buffer.from('#!/bin/sh\necho sextant example initrd\n'), { dir: 'etc', fileName: 'sextant-example', fileMode: 0o755 });
      await buildUki(
        { stub: HOST_STUB, linux: { file: kernel }, initrd, cmdline: Buffer.from('console=ttyS0 panic=-1'), osrel, log: ctx.log },
        out,
      );
      const p = await precomputeUkiFile(out, predictOptions(ctx.values));
      return { ...predictionJson(p), uki: { stub: HOST_STUB, kernel } };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
  render: (r) => `UKI built from ${r.uki.stub} + ${r.uki.kernel} (removed again)\n\n` + renderPrediction(r as unknown as UkiPrediction),
};

export const measureCommands: CommandSpec<any>[] = [measureUki, measurePe, measureExample];
