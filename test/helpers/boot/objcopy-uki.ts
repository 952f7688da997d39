import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../../lib/exec.js';

/** What goes into a UKI built for a boot test (section contents as bytes). */
export interface UkiInputs {
  stub: string;
  kernel: string;
  initrd: Uint8Array;
  cmdline: string;
  osrel: string;
  /** Adds a .uname section (as ukify does); systemd >= 254 stubs measure it into PCR 11. */
  uname?: string;
}

const PAGE = 0x1000;

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** ImageBase + SizeOfImage of a PE32+ file: where appended sections can start. */
function imageEnd(pe: Buffer): number {
  const peOff = pe.readUInt32LE(0x3c);
  const opt = peOff + 24;
  if (pe.readUInt16LE(opt) !== 0x20b) throw new Error('stub is not PE32+');
  const imageBase = Number(pe.readBigUInt64LE(opt + 24));
  const sizeOfImage = pe.readUInt32LE(opt + 56);
  return imageBase + sizeOfImage;
}

/**
 * Builds a UKI the way systemd 252's documentation does (objcopy --add-section with
 * --change-section-vma), placing each section page-aligned after the stub's image, then zeroes
 * the build stamps (see zeroBuildStamps).
 */
export async function buildUkiWithObjcopy(inputs: UkiInputs, out: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-uki-'));
  try {
    const files: [string, string][] = [
      ['.osrel', path.join(dir, 'osrel')],
      ['.cmdline', path.join(dir, 'cmdline')],
    ];
    await writeFile(path.join(dir, 'osrel'), inputs.osrel);
    await writeFile(path.join(dir, 'cmdline'), inputs.cmdline);
    if (inputs.uname !== undefined) {
      await writeFile(path.join(dir, 'uname'), inputs.uname);
      files.push(['.uname', path.join(dir, 'uname')]);
    }
    await writeFile(path.join(dir, 'initrd'), inputs.initrd);
    files.push(['.linux', inputs.kernel], ['.initrd', path.join(dir, 'initrd')]);

    let vma = alignUp(imageEnd(await readFile(inputs.stub)), PAGE);
    const args: string[] = [];
    for (const [name, file] of files) {
      const size = (await readFile(file)).length;
      args.push('--add-section', `${name}=${file}`, '--change-section-vma', `${name}=0x${vma.toString(16)}`);
      vma = alignUp(vma + size, PAGE);
    }
    await run('objcopy', [...args, inputs.stub, out]);
    await zeroBuildStamps(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * objcopy writes "now" into the COFF TimeDateStamp (Authenticode covers it, so PCR 4 would
 * change) and a PE CheckSum computed over that stamp (Authenticode skips it, but the file's
 * bytes would still differ). Zeroing both makes equal inputs give a bit-identical UKI; UEFI
 * ignores the checksum of an application.
 */
export async function zeroBuildStamps(file: string): Promise<void> {
  const pe = await readFile(file);
  const peOff = pe.readUInt32LE(0x3c);
  pe.writeUInt32LE(0, peOff + 8); // COFF TimeDateStamp
  pe.writeUInt32LE(0, peOff + 24 + 64); // optional header CheckSum
  await writeFile(file, pe);
}
