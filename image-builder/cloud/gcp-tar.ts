import { mkdtemp, rm, truncate, stat } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';

/** GCP's image import wants the raw disk in whole GiB. */
export const GIB = 1024 * 1024 * 1024;

/**
 * Writes the tar.gz GCP imports an image from: one member `disk.raw` (the disk, zero-padded
 * to whole GiB), GNU tar's oldgnu format with sparse members, as GCP documents
 * (`tar --format=oldgnu -Sczf`). Reproducible: holes are found by reading zeros
 * (--hole-detection=raw, not the file system's SEEK_HOLE map, which differs between copies of
 * the same bytes), fixed mtime (`time`), owner and group 0, mode 0644, and `gzip -n` (no name
 * or time in the gzip header). Returns the size of disk.raw.
 */
export async function writeGcpTarGz(raw: string, out: string, opts: { time: number; log?: (l: string) => void }): Promise<number> {
  const dir = await mkdtemp(path.join(path.dirname(out), '.sextant-gcp-'));
  try {
    const disk = path.join(dir, 'disk.raw');
    const { size } = await stat(raw);
    const padded = Math.ceil(size / GIB) * GIB;
    await run('cp', ['--sparse=always', raw, disk], { log: opts.log });
    await truncate(disk, padded);
    await run(
      'tar',
      [
        '--create', '--format=oldgnu', '--sparse', '--hole-detection=raw',
        `--mtime=@${opts.time}`, '--owner=0', '--group=0', '--numeric-owner', '--mode=0644',
        '--use-compress-program=gzip -n -6', '-f', out, '-C', dir, 'disk.raw',
      ],
      { log: opts.log, timeoutMs: 30 * 60_000 },
    );
    return padded;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
