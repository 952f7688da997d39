import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** Fixed metadata so the bundle's bytes depend only on the files' names and contents. */
const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root', mode: 0o644 };

/**
 * Writes a reproducible tar of `files` (paths relative to `dir`): sorted entries, fixed
 * mtime/owner/mode, no directories, no extended headers.
 */
export async function writeReleaseBundle(dir: string, files: string[], outFile: string): Promise<void> {
  const pack = tar.pack();
  const out = pipeline(pack, createWriteStream(outFile));
  for (const name of [...files].sort()) {
    const full = path.join(dir, name);
    const { size } = await stat(full);
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ ...FIXED, name, size, type: 'file' }, (err) => (err ? reject(err) : resolve()));
      createReadStream(full).on('error', reject).pipe(entry);
    });
  }
  pack.finalize();
  await out;
}
