import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hash, toHex } from '../../../lib/bytes.js';
import { run } from '../../../lib/exec.js';
import { extendAll } from '../../../measurements/pcr/extend.js';

/**
 * What a direct firmware boot of a UKI should measure, computed WITHOUT sextant's own
 * PE/UKI code: Authenticode hashes from `pesign -h`, section bytes from `objcopy -O binary`,
 * PCR 11 cross-checked with systemd-measure where it models the stub. The boot tests compare
 * real boots with these, so a real boot checks the tools and the tools check the boot.
 */

export const EFI_ACTION_BOOT_OPTION = 'Calling EFI Application from Boot Option';

/** Sections a systemd-stub measures into PCR 11, in its fixed order (only those present). */
const STUB252_SECTIONS = ['.linux', '.osrel', '.cmdline', '.initrd'];
const STUB257_SECTIONS = ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrpkey', '.profile', '.hwids'];
/** systemd 258 added .efifw to the measured sections (src/fundamental/uki.c, unified_sections[]). */
const STUB258_SECTIONS = [...STUB257_SECTIONS, '.efifw'];

export async function pesignHash(file: string): Promise<string> {
  const r = await run('pesign', ['-h', '-i', file]);
  const m = /hash:\s*([0-9a-f]{64})/i.exec(r.stdout);
  if (!m) throw new Error(`pesign printed no hash for ${file}: ${r.stdout}`);
  return m[1].toLowerCase();
}

/** Section contents as objcopy sees them; null when the section is absent. */
export async function objcopySections(uki: string): Promise<Map<string, Buffer>> {
  const r = await run('objdump', ['-h', uki]);
  const names = [...r.stdout.matchAll(/^\s*\d+\s+(\.\S+)\s+[0-9a-f]+/gm)].map((m) => m[1]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-sections-'));
  try {
    const out = new Map<string, Buffer>();
    for (const name of names) {
      const file = path.join(dir, name.slice(1));
      await run('objcopy', ['-O', 'binary', `--only-section=${name}`, uki, file]);
      out.set(name, await readFile(file));
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function sha256Hex(...parts: Uint8Array[]): string {
  return toHex(hash('sha256', ...parts));
}

function pcrOf(digestsHex: string[]): string {
  return toHex(extendAll('sha256', digestsHex.map((d) => Buffer.from(d, 'hex'))));
}

export interface IndependentPrediction {
  /** sha256 event digests per PCR, in measurement order. */
  events: Record<4 | 9 | 11, string[]>;
  pcrs: { 4: string; 9: string | null; 11: string };
}

/**
 * The SHA-256 PCRs 4, 9 and 11 of a direct boot of `uki` with systemd-stub `stubMajor`.
 * Up to 257 the stub starts the kernel with LoadImage, so PCR 4 has the kernel's Authenticode
 * hash too; from 258 it maps the kernel itself (systemd PR #37372) and PCR 4 has the UKI only.
 * PCR 9 is null for stubs >= 254: they append a generated cpio to the initrd the kernel
 * measures, which no tool here reproduces independently.
 */
export async function predictIndependently(uki: string, stubMajor: number): Promise<IndependentPrediction> {
  const sections = await objcopySections(uki);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-kernel-'));
  let kernelAuth: string;
  try {
    const kernelFile = path.join(dir, 'linux.efi');
    await run('objcopy', ['-O', 'binary', '--only-section=.linux', uki, kernelFile]);
    kernelAuth = await pesignHash(kernelFile);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const pcr4 = [sha256Hex(Buffer.from(EFI_ACTION_BOOT_OPTION)), sha256Hex(Buffer.alloc(4)), await pesignHash(uki)];
  if (stubMajor < 258) pcr4.push(kernelAuth);
  const order = stubMajor >= 258 ? STUB258_SECTIONS : stubMajor >= 254 ? STUB257_SECTIONS : STUB252_SECTIONS;
  const pcr11: string[] = [];
  for (const name of order) {
    const data = sections.get(name);
    if (data) pcr11.push(sha256Hex(Buffer.from(`${name}\0`)), sha256Hex(data));
  }
  const cmdline = sections.get('.cmdline')?.toString('utf8') ?? '';
  const pcr9 = [sha256Hex(Buffer.from(`${cmdline}\0`, 'utf16le'))];
  if (stubMajor < 254) pcr9.push(sha256Hex(sections.get('.initrd') ?? Buffer.alloc(0)));
  return {
    events: { 4: pcr4, 9: pcr9, 11: pcr11 },
    pcrs: { 4: pcrOf(pcr4), 9: stubMajor < 254 ? pcrOf(pcr9) : null, 11: pcrOf(pcr11) },
  };
}

/** systemd-measure's PCR 11 (sections only: --phase=''), or null when it is not installed. */
export async function systemdMeasurePcr11(uki: string): Promise<string | null> {
  const tool = '/usr/lib/systemd/systemd-measure';
  try {
    await readFile(tool);
  } catch {
    return null;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-measure-'));
  try {
    const args = ['calculate', '--bank=sha256', '--phase='];
    for (const s of ['linux', 'osrel', 'cmdline', 'initrd']) {
      await run('objcopy', ['-O', 'binary', `--only-section=.${s}`, uki, path.join(dir, s)]);
      args.push(`--${s}=${path.join(dir, s)}`);
    }
    const r = await run(tool, args);
    const m = /^11:sha256=([0-9a-f]{64})$/m.exec(r.stdout);
    if (!m) throw new Error(`systemd-measure printed no PCR 11: ${r.stdout}`);
    return m[1];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
