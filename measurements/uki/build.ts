import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run, type ExecLogger } from '../../lib/exec.js';
import { parsePe } from '../pe/parse.js';

/** Section contents: bytes, or a path to read them from. */
export type SectionSource = Uint8Array | { file: string };

export interface UkiParts {
  /** The systemd-stub to wrap (e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub). */
  stub: string;
  linux: SectionSource;
  initrd?: SectionSource;
  cmdline?: SectionSource;
  osrel?: SectionSource;
  uname?: SectionSource;
  /** Further sections (e.g. .splash, .pcrpkey), added before .linux in this order. */
  extra?: Record<string, SectionSource>;
  log?: ExecLogger;
}

/**
 * Builds a UKI the way systemd 252's documentation does: objcopy adds each section to the stub
 * at its own VMA (here: right after the stub's image, section-aligned, which also works for
 * stubs with a high ImageBase like systemd 257's), then the COFF TimeDateStamp that objcopy sets
 * to "now" (and that Authenticode covers) is zeroed, with the CheckSum, so equal inputs give
 * equal bytes. The stub's own sections (.sdmagic, .sbat, ...) stay as they are.
 */
export async function buildUki(parts: UkiParts, outFile: string): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'sextant-uki-'));
  try {
    const stub = parsePe(await readFile(parts.stub));
    const alignment = BigInt(Math.max(stub.sectionAlignment, 0x1000));
    const align = (n: bigint): bigint => ((n + alignment - 1n) / alignment) * alignment;
    let vma = align(stub.imageBase + BigInt(stub.sizeOfImage));
    const ordered: [string, SectionSource | undefined][] = [
      ['.osrel', parts.osrel],
      ['.cmdline', parts.cmdline],
      ['.uname', parts.uname],
      ...Object.entries(parts.extra ?? {}),
      ['.linux', parts.linux],
      ['.initrd', parts.initrd],
    ];
    const args: string[] = [];
    for (const [name, source] of ordered) {
      if (source === undefined) continue;
      let file: string;
      let size: number;
      if (source instanceof Uint8Array) {
        file = path.join(work, name.replace(/^\./, '') || 'section');
        await writeFile(file, source);
        size = source.length;
      } else {
        file = source.file;
        size = (await readFile(file)).length;
      }
      args.push('--add-section', `${name}=${file}`, '--change-section-vma', `${name}=0x${vma.toString(16)}`);
      vma = align(vma + BigInt(Math.max(size, 1)));
    }
    await run('objcopy', [...args, parts.stub, outFile], { log: parts.log });
    const uki = await readFile(outFile);
    const pe = parsePe(uki);
    uki.fill(0, pe.timeDateStampOffset, pe.timeDateStampOffset + 4);
    // objcopy's PE CheckSum covers that timestamp; Authenticode skips it, but zero it too so
    // equal inputs give bit-identical files (firmware does not check it)
    uki.fill(0, pe.checkSumOffset, pe.checkSumOffset + 4);
    await writeFile(outFile, uki);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
