import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fail } from '../../lib/errors.js';
import { LUKS2_DATA_OFFSET } from './constants.js';
import { keyOpensHeader, luksDumpJson, type CryptsetupCtx } from './cryptsetup.js';

/**
 * Read-only inspection of a device the agent has not proven to be its own. cryptsetup writes
 * whenever it can open a device read-write and finds something to "repair" (a damaged or stale
 * header copy: `luksDump` alone changed 160 bytes of a disk sextant then refused), and as root
 * no file mode stops it. So cryptsetup never gets the device before the key has opened it:
 * the header area is read here with O_RDONLY, and cryptsetup dumps and tests keys on a private
 * scratch copy of those bytes. Whatever it writes lands in the copy, which is deleted.
 */

/** Bytes [0, min(size, 16 MiB)): both header copies and every keyslot sextant's layout has. */
export async function readHeaderArea(device: string, size: number): Promise<Buffer> {
  const length = Math.min(size, LUKS2_DATA_OFFSET);
  const buf = Buffer.alloc(length);
  const fh = await open(device, 'r');
  try {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, done);
      if (bytesRead === 0) fail('DISK_STEP_FAILED', `${device} ended after ${done} bytes while its header area was read`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return buf;
}

// A sparse copy as long as the device (cryptsetup refuses a header file shorter than its data
// offset), capped so the sparse length fits any scratch file system.
const MAX_SCRATCH_BYTES = 2 ** 40;

/** Runs `fn` on a private sparse file holding `area` (mode 0600 in a fresh 0700 directory), then deletes it. */
export function withScratchCopy<T>(area: Buffer, size: number, fn: (file: string) => Promise<T>): Promise<T> {
  return withScratchFile(area.length, size, (file) => writeFile(file, area, { mode: 0o600 }), fn);
}

async function withScratchFile<T>(areaLength: number, size: number, fill: (file: string) => Promise<void>, fn: (file: string) => Promise<T>): Promise<T> {
  // Under the unit, $RUNTIME_DIRECTORY (/run/sextant, a 0700 tmpfs): the node's root is read-only.
  const dir = await mkdtemp(path.join(process.env.RUNTIME_DIRECTORY ?? os.tmpdir(), 'sextant-header-'));
  try {
    const file = path.join(dir, 'header.img');
    await fill(file);
    await truncate(file, Math.max(areaLength, Math.min(size, MAX_SCRATCH_BYTES)));
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const COPY_CHUNK = 1024 * 1024;

/**
 * The bytes readHeaderArea returns, copied from `device` (O_RDONLY) into a new file `file`
 * (0600) a MiB at a time, an all-zero MiB left as a hole: one MiB in memory, not 16.
 */
async function copyHeaderArea(device: string, size: number, file: string): Promise<void> {
  const length = Math.min(size, LUKS2_DATA_OFFSET);
  const chunk = Buffer.alloc(Math.min(length, COPY_CHUNK));
  const zeros = Buffer.alloc(chunk.length);
  const src = await open(device, 'r');
  try {
    const dst = await open(file, 'wx', 0o600);
    try {
      let done = 0;
      while (done < length) {
        const want = Math.min(chunk.length, length - done);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await src.read(chunk, got, want - got, done + got);
          if (bytesRead === 0) fail('DISK_STEP_FAILED', `${device} ended after ${done + got} bytes while its header area was read`);
          got += bytesRead;
        }
        if (!chunk.subarray(0, want).equals(zeros.subarray(0, want))) await dst.write(chunk, 0, want, done);
        done += want;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/** `cryptsetup luksDump --dump-json-metadata` of the header as read now, without cryptsetup touching the device. */
export async function dumpHeaderReadOnly(ctx: CryptsetupCtx, area: Buffer, size: number): Promise<string> {
  return withScratchCopy(area, size, (copy) => luksDumpJson(ctx, copy));
}

/** Whether `key` opens a keyslot of the device's header, proven on a read-only copy of it (streamed: the header area is never all in memory). */
export async function keyOpensDisk(ctx: CryptsetupCtx, device: string, size: number, key: Uint8Array): Promise<boolean> {
  const length = Math.min(size, LUKS2_DATA_OFFSET);
  return withScratchFile(length, size, (file) => copyHeaderArea(device, size, file), (copy) => keyOpensHeader(ctx, copy, key));
}
