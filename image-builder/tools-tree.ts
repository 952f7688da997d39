import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runMkosi, type MkosiCommand, type MkosiRunOptions } from './mkosi.js';

/** Hash of every file of a config folder, so a changed tools config rebuilds the tree. */
async function hashConfigDir(dir: string): Promise<string> {
  const h = createHash('sha256');
  async function walk(d: string): Promise<void> {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = path.join(d, e.name);
      h.update(path.relative(dir, p) + '\0');
      if (e.isDirectory()) await walk(p);
      else h.update(await readFile(p));
    }
  }
  await walk(dir);
  return h.digest('hex');
}

/**
 * Builds (once) the trixie tools tree mkosi runs its tools from, and returns its path.
 * Rebuilt only when mkosi/tools/ changes.
 */
export async function ensureToolsTree(
  mkosi: MkosiCommand,
  toolsConfigDir: string,
  cacheDir: string,
  packageCacheDir: string,
  opts: MkosiRunOptions = {},
): Promise<string> {
  const outDir = path.join(cacheDir, 'tools');
  const tree = path.join(outDir, 'tools');
  const stamp = path.join(outDir, 'config.sha256');
  const want = await hashConfigDir(toolsConfigDir);
  if (existsSync(tree) && existsSync(stamp) && (await readFile(stamp, 'utf8')).trim() === want) return tree;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await runMkosi(
    mkosi,
    ['-C', toolsConfigDir, '--output-dir', outDir, '--package-cache-dir', packageCacheDir, '-f', 'build'],
    opts,
  );
  await writeFile(stamp, want + '\n');
  return tree;
}
