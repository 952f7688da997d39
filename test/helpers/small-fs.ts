/**
 * A real, small file system for full-disk tests: tmpfs of a fixed size (root can mount it),
 * else a loop-mounted ext4 image. Neither possible is a loud failure, never a skip: the
 * proof needs the kernel's own ENOSPC.
 */
import { mkdtemp, readdir, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';

export interface SmallFs {
  dir: string;
  mechanism: 'tmpfs' | 'loop-ext4';
  /** Fills the file system until fewer than `leave` bytes are free. */
  fill(leave?: number): Promise<void>;
  /** Gives the filler's space back. */
  free(): Promise<void>;
  freeBytes(): Promise<number>;
  unmount(): Promise<void>;
}

export async function mountSmallFs(sizeKiB = 256): Promise<SmallFs> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'smallfs-'));
  const dir = path.join(base, 'mnt');
  await run('mkdir', [dir]);
  let mechanism: SmallFs['mechanism'] = 'tmpfs';
  const errors: string[] = [];
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir]);
  } catch (e) {
    errors.push(`tmpfs: ${(e as Error).message}`);
    mechanism = 'loop-ext4';
    const img = path.join(base, 'fs.img');
    try {
      await run('truncate', ['-s', `${Math.max(sizeKiB, 1024)}K`, img]);
      await run('mkfs.ext4', ['-q', '-m', '0', img]);
      await run('mount', ['-o', 'loop', img, dir]);
    } catch (e2) {
      errors.push(`loop ext4: ${(e2 as Error).message}`);
      await rm(base, { recursive: true, force: true });
      throw new Error(`cannot mount a small file system for the full-disk proof (${errors.join('; ')})`);
    }
  }
  const freeBytes = async (): Promise<number> => {
    const s = await statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  };
  let fillers = 0;
  return {
    dir,
    mechanism,
    freeBytes,
    fill: async (leave = 0) => {
      // Whole 4 KiB blocks: at most `leave` bytes (rounded to a block) stay free.
      for (let free = await freeBytes(); free > leave; free = await freeBytes()) {
        const n = Math.max(4096, Math.floor((free - leave) / 4096) * 4096);
        try {
          await writeFile(path.join(dir, `filler-${fillers++}`), Buffer.alloc(n));
        } catch {
          break; // ENOSPC: full
        }
      }
    },
    free: async () => {
      for (const f of await readdir(dir)) if (f.startsWith('filler-')) await unlink(path.join(dir, f));
    },
    unmount: async () => {
      // Lazily when a test left a file open: never leave a mount behind.
      await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
      await rm(base, { recursive: true, force: true });
    },
  };
}
