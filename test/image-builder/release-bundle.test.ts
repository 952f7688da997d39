import test from 'ava';
import { mkdtemp, readFile, writeFile, utimes, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { writeReleaseBundle } from '../../image-builder/release-bundle.js';

test('the release bundle depends only on names and contents (sorted, fixed metadata)', async (t) => {
  const a = await mkdtemp(path.join(os.tmpdir(), 'bundle-a-'));
  const b = await mkdtemp(path.join(os.tmpdir(), 'bundle-b-'));
  for (const [dir, order, mtime, mode] of [
    [a, ['z.json', 'a.efi', 'SHA256SUMS'], 1_000, 0o600],
    [b, ['SHA256SUMS', 'a.efi', 'z.json'], 2_000_000, 0o755],
  ] as const) {
    for (const name of order) {
      const f = path.join(dir, name);
      await writeFile(f, `content of ${name}\n`);
      await utimes(f, mtime, mtime);
      await chmod(f, mode);
    }
  }
  await writeReleaseBundle(a, ['z.json', 'a.efi', 'SHA256SUMS'], path.join(a, 'out.tar'));
  await writeReleaseBundle(b, ['SHA256SUMS', 'a.efi', 'z.json'], path.join(b, 'out.tar'));
  t.deepEqual(await readFile(path.join(a, 'out.tar')), await readFile(path.join(b, 'out.tar')));
  // GNU tar reads it back: sorted names, root:root, epoch mtime, 0644.
  const listing = (await run('tar', ['--numeric-owner', '--full-time', '-tvf', path.join(a, 'out.tar')])).stdout.trim().split('\n');
  t.deepEqual(listing.map((l) => l.split(/\s+/).at(-1)), ['SHA256SUMS', 'a.efi', 'z.json']);
  for (const l of listing) t.regex(l, /^-rw-r--r-- 0\/0 .* 1970-01-01 00:00:00 /);
});
