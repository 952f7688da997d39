/**
 * The node image the end-to-end test boots: SEXTANT_E2E_IMAGE_DIR (a `sextant image build`
 * output folder), or one built here with the kubeadm stand-in into .cache/e2e-image, reused
 * while the source tree is unchanged. And the tampered variant for the refusal test.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import { sha256File } from '../../lib/hash-file.js';
import { extractUkiFromDisk, replaceUkiOnDisk } from '../../image-builder/extract-uki.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { checkImageDir, resolveNodeImage as resolveMiniImage, type NodeImage } from '../../mini/image.js';

export type { NodeImage } from '../../mini/image.js';

/** SEXTANT_E2E_IMAGE_DIR (with SEXTANT_E2E_MEASUREMENTS_KEY), else mini/image.ts's cached or fresh build. */
export async function resolveNodeImage(log?: (l: string) => void): Promise<NodeImage> {
  const given = process.env.SEXTANT_E2E_IMAGE_DIR;
  if (given) return { ...checkImageDir(given), measurementsKey: process.env.SEXTANT_E2E_MEASUREMENTS_KEY };
  return resolveMiniImage({ log });
}

interface SfdiskJson {
  partitiontable: { sectorsize?: number; partitions: { start: number; type: string }[] };
}

/**
 * A copy of the image whose UKI has one byte of its .cmdline section changed (a digit of a
 * kernel parameter, so the boot still works), written back onto the copy's ESP with mtools.
 * Nothing is re-signed: measurements.json still describes the original UKI.
 */
export async function tamperCmdline(imageDir: string, outRaw: string, log?: (l: string) => void): Promise<{ before: string; after: string }> {
  const raw = path.join(imageDir, 'sextant-node.raw');
  await run('cp', ['--sparse=always', raw, outRaw], { log });
  const uki = await extractUkiFromDisk(outRaw, log);
  const cmd = parsePe(uki).sections.find((s) => s.name === '.cmdline');
  if (!cmd) throw new SextantError({ code: 'IMAGE_MISMATCH', message: 'the UKI has no .cmdline section' });
  const start = cmd.pointerToRawData;
  const text = uki.subarray(start, start + cmd.virtualSize).toString('latin1');
  const at = text.search(/\d(?=\D*$)/);
  if (at < 0) throw new SextantError({ code: 'IMAGE_MISMATCH', message: `no digit to change in the command line "${text}"` });
  const before = text.replace(/\0+$/, '');
  uki[start + at] = text[at] === '0' ? 0x31 : 0x30;
  const after = uki.subarray(start, start + cmd.virtualSize).toString('latin1').replace(/\0+$/, '');
  const efi = outRaw + '.efi';
  await writeFile(efi, uki);
  await writeUkiToDisk(outRaw, efi, log);
  await rm(efi);
  return { before, after };
}

/** Replaces the UKI the firmware boots (EFI/BOOT/BOOTX64.EFI on the ESP) in a disk image, with mtools. */
export async function writeUkiToDisk(raw: string, efi: string, log?: (l: string) => void): Promise<void> {
  await replaceUkiOnDisk(raw, efi, { log });
}

/** SHA-256 of a whole disk image file (the state disk "unchanged" check). */
export async function diskSha256(file: string): Promise<string> {
  return sha256File(file);
}

/** The first `bytes` of the state partition (LUKS2 header + keyslots), copied out for cryptsetup on the host. */
export async function copyPartitionHead(disk: string, out: string, bytes = 16 * 1024 * 1024): Promise<void> {
  const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as SfdiskJson;
  const p = table.partitiontable.partitions[0];
  const fh = await (await import('node:fs/promises')).open(disk, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, p.start * (table.partitiontable.sectorsize ?? 512));
    await writeFile(out, buf);
  } finally {
    await fh.close();
  }
}
