import { createHash } from 'node:crypto';
import { open, stat, truncate } from 'node:fs/promises';
import { SextantError } from '../../lib/errors.js';
import { run } from '../../lib/exec.js';

/** Azure takes a fixed VHD whose virtual size is a whole number of MiB. */
export const MIB = 1024 * 1024;
/** Seconds from 1970-01-01 to 2000-01-01, the VHD footer's epoch. */
const VHD_EPOCH = 946_684_800;
const FOOTER_SIZE = 512;

/**
 * The 512-byte footer of a fixed VHD of `size` bytes (big-endian fields, spec section
 * "Hard Disk Footer Format"). Deterministic: the time stamp is `time` (the build's
 * SourceDateEpoch) and the unique id is derived from `seed` (the disk's SHA-256). The other
 * fields are what `qemu-img convert -O vpc -o subformat=fixed,force_size` writes, Azure's
 * documented conversion: creator "qem2" and the maximal CHS geometry 65535/16/255, both of
 * which tell readers to take the size from current_size rather than from the geometry (a
 * whole-MiB size is rarely a whole number of cylinders).
 */
export function vhdFooter(size: number, opts: { time: number; seed: string }): Buffer {
  if (size % 512 !== 0) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `a VHD's size must be whole sectors, got ${size}` });
  const f = Buffer.alloc(FOOTER_SIZE);
  f.write('conectix', 0, 'latin1');
  f.writeUInt32BE(0x00000002, 8); // features: reserved bit, always set
  f.writeUInt32BE(0x00010000, 12); // file format version 1.0
  f.writeBigUInt64BE(0xffffffffffffffffn, 16); // data offset: none for a fixed disk
  f.writeUInt32BE(Math.max(0, opts.time - VHD_EPOCH), 24);
  f.write('qem2', 28, 'latin1');
  f.writeUInt32BE(0x00050003, 32); // creator version
  f.write('Wi2k', 36, 'latin1'); // creator host OS
  f.writeBigUInt64BE(BigInt(size), 40); // original size
  f.writeBigUInt64BE(BigInt(size), 48); // current size
  f.writeUInt16BE(65535, 56); // cylinders
  f.writeUInt8(16, 58); // heads
  f.writeUInt8(255, 59); // sectors per track
  f.writeUInt32BE(2, 60); // disk type: fixed
  const id = createHash('sha256').update('sextant vhd unique id\0').update(opts.seed).digest().subarray(0, 16);
  id[6] = (id[6] & 0x0f) | 0x50; // an RFC 4122 name-based (version 5 style) UUID
  id[8] = (id[8] & 0x3f) | 0x80;
  id.copy(f, 68);
  f.writeUInt32BE(vhdChecksum(f), 64);
  return f;
}

/** One's complement of the byte sum of the footer without its checksum field. */
export function vhdChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < FOOTER_SIZE; i++) if (i < 64 || i >= 68) sum += footer[i];
  return ~sum >>> 0;
}

/**
 * Writes `raw` as a fixed VHD: the disk's bytes (copied sparsely), zeros up to the next
 * whole MiB (Azure's rule), then the footer. Returns the virtual size.
 */
export async function writeFixedVhd(raw: string, out: string, opts: { time: number; seed: string; log?: (l: string) => void }): Promise<number> {
  const { size } = await stat(raw);
  const virtualSize = Math.ceil(size / MIB) * MIB;
  await run('cp', ['--sparse=always', raw, out], { log: opts.log });
  await truncate(out, virtualSize);
  const fh = await open(out, 'r+');
  try {
    await fh.write(vhdFooter(virtualSize, opts), 0, FOOTER_SIZE, virtualSize);
  } finally {
    await fh.close();
  }
  return virtualSize;
}
