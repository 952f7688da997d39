import { open, stat, truncate, writeFile, rm } from 'node:fs/promises';
import { run } from '../../../lib/exec.js';

/**
 * Fixed identities of the boot disk: OVMF measures the GPT header and partition entries into
 * PCR 5, so random GUIDs would make PCR 5 differ on every boot.
 */
export const BOOT_DISK_GUID = '5e7a0000-0000-4000-8000-000000000001';
export const ESP_PARTITION_GUID = '5e7a0000-0000-4000-8000-000000000002';
const ESP_VOLUME_ID = '5E7A0001';
const MIB = 1024 * 1024;
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

/**
 * Writes a GPT disk image with one FAT32 ESP holding `efiBinary` as EFI/BOOT/BOOTX64.EFI,
 * the path firmware boots when it has no boot entry.
 */
export async function buildEspDisk(efiBinary: string, out: string, log?: (line: string) => void): Promise<void> {
  const efiSize = (await stat(efiBinary)).size;
  // FAT32 needs >= 65,525 clusters (EDK2 rejects fewer): 512-byte clusters and >= 40 MiB.
  const espBytes = Math.max(40 * MIB, Math.ceil((efiSize * 1.1 + 8 * MIB) / MIB) * MIB);
  const espImage = `${out}.esp`;
  try {
    await writeFile(espImage, '');
    await truncate(espImage, espBytes);
    await run('mkfs.vfat', ['-F', '32', '-S', '512', '-s', '1', '-i', ESP_VOLUME_ID, '-n', 'ESP', espImage], { log });
    await run('mmd', ['-i', espImage, '::/EFI', '::/EFI/BOOT'], { log, env: MTOOLS_ENV });
    await run('mcopy', ['-i', espImage, efiBinary, '::/EFI/BOOT/BOOTX64.EFI'], { log, env: MTOOLS_ENV });

    await writeFile(out, '');
    await truncate(out, espBytes + 2 * MIB); // 1 MiB before the ESP, 1 MiB for the backup GPT
    const espSectors = espBytes / 512;
    await run(
      'sgdisk',
      ['-o', '-U', BOOT_DISK_GUID, '-n', `1:2048:${2048 + espSectors - 1}`, '-t', '1:EF00', '-u', `1:${ESP_PARTITION_GUID}`, '-c', '1:ESP', out],
      { log },
    );
    await copyInto(espImage, out, MIB);
  } finally {
    await rm(espImage, { force: true });
  }
}

async function copyInto(src: string, dst: string, offset: number): Promise<void> {
  const [from, to] = await Promise.all([open(src, 'r'), open(dst, 'r+')]);
  try {
    const buf = Buffer.alloc(4 * MIB);
    for (let pos = 0; ; ) {
      const { bytesRead } = await from.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      await to.write(buf, 0, bytesRead, offset + pos);
      pos += bytesRead;
    }
  } finally {
    await Promise.all([from.close(), to.close()]);
  }
}
