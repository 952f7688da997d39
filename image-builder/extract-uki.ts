import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { run } from '../lib/exec.js';

const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/** Where the firmware looks for a removable-media boot loader on x86-64. */
export const FALLBACK_BOOT_PATH = 'EFI/BOOT/BOOTX64.EFI';

interface SfdiskJson {
  partitiontable?: { sectorsize?: number; partitions?: { start: number; size: number; type: string; name?: string }[] };
}

/** The mtools image argument (`FILE@@OFFSET`) of the EFI system partition in a GPT disk image. */
async function espImageArg(diskImage: string, log?: (l: string) => void): Promise<string> {
  const table = JSON.parse((await run('sfdisk', ['--json', diskImage], { log })).stdout) as SfdiskJson;
  const sector = table.partitiontable?.sectorsize ?? 512;
  const esp = table.partitiontable?.partitions?.find((p) => p.type.toUpperCase() === ESP_TYPE);
  if (!esp) throw new SextantError({ code: 'IMAGE_MISMATCH', message: `${diskImage}: no EFI system partition in its GPT` });
  return `${diskImage}@@${esp.start * sector}`;
}

/**
 * Reads the UKI the firmware would boot out of a disk image: finds the ESP in the GPT
 * (sfdisk) and copies EFI/BOOT/BOOTX64.EFI out of its FAT file system (mtools), so an admin
 * can recompute measurements from the shipped image rather than from a separate UKI file.
 */
export async function extractUkiFromDisk(diskImage: string, log?: (l: string) => void): Promise<Buffer> {
  const esp = await espImageArg(diskImage, log);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-esp-'));
  try {
    const out = path.join(dir, 'uki.efi');
    await run('mcopy', ['-n', '-i', esp, `::/${FALLBACK_BOOT_PATH}`, out], { log });
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Replaces EFI/BOOT/BOOTX64.EFI on a disk image's ESP with `ukiFile` (mtools). With
 * `keepMtime` the FAT entry takes the file's modification time (`mcopy -m`) instead of the
 * clock's, so the same disk and UKI give the same bytes (the image builder sets the signed
 * UKI's mtime to SourceDateEpoch, the time mkosi gave the unsigned one).
 */
export async function replaceUkiOnDisk(diskImage: string, ukiFile: string, opts: { keepMtime?: boolean; log?: (l: string) => void } = {}): Promise<void> {
  const esp = await espImageArg(diskImage, opts.log);
  await run('mcopy', ['-o', ...(opts.keepMtime ? ['-m'] : []), '-i', esp, ukiFile, `::/${FALLBACK_BOOT_PATH}`], { log: opts.log });
}
