import { cp, mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { SextantError } from '../lib/errors.js';
import { sha256File } from '../lib/hash-file.js';

/**
 * Stages the agent for the image as an mkosi extra tree: the CLI bundled into one ESM file
 * (esbuild), koffi's package beside it (its native .node cannot be bundled), a /usr/bin
 * wrapper, and the systemd unit. Deterministic: no timestamps, no absolute paths.
 */
export async function stageAgentTree(repoRoot: string, treeDir: string): Promise<{ files: string[]; sha256: Record<string, string> }> {
  const entry = path.join(repoRoot, 'dist/cli/main.js');
  if (!existsSync(entry)) {
    throw new SextantError({ code: 'BUILD_FAILED', message: 'dist/cli/main.js missing: run `npm run build` first' });
  }
  const libDir = path.join(treeDir, 'usr/lib/sextant');
  await mkdir(libDir, { recursive: true });
  await build({
    // dist/cli/main.js only exports main(); bin/sextant.js is what calls it. The bundle needs
    // that call too, or `sextant agent run` in the image exits 0 having done nothing.
    stdin: {
      contents: "import { main } from './dist/cli/main.js';\nprocess.exitCode = await main(process.argv.slice(2));\n",
      resolveDir: repoRoot,
      sourcefile: 'sextant-image-entry.mjs',
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: path.join(libDir, 'sextant.mjs'),
    external: ['koffi'],
    // ESM bundles of CommonJS dependencies need a require(); give them Node's.
    banner: { js: "import { createRequire as __sextantCreateRequire } from 'node:module'; const require = __sextantCreateRequire(import.meta.url);" },
    legalComments: 'none',
    sourcemap: false,
    logLevel: 'silent',
  });
  const koffiSrc = path.join(repoRoot, 'node_modules/koffi');
  const koffiDst = path.join(libDir, 'node_modules/koffi');
  await cp(koffiSrc, koffiDst, {
    recursive: true,
    // Only the x64 Linux build and the loader: the package ships every platform's binary.
    filter: (src) => {
      const rel = path.relative(koffiSrc, src);
      const m = /^build[\\/]koffi[\\/]([^\\/]+)/.exec(rel);
      return !m || m[1] === 'linux_x64';
    },
  });
  const bin = path.join(treeDir, 'usr/bin/sextant');
  await mkdir(path.dirname(bin), { recursive: true });
  await writeFile(bin, '#!/bin/sh\nexec /usr/bin/node /usr/lib/sextant/sextant.mjs "$@"\n');
  await chmod(bin, 0o755);
  const files = ['usr/bin/sextant', 'usr/lib/sextant/sextant.mjs'];
  const unit = path.join(repoRoot, 'agent/systemd/sextant-agent.service');
  if (existsSync(unit)) {
    const dst = path.join(treeDir, 'usr/lib/systemd/system/sextant-agent.service');
    await mkdir(path.dirname(dst), { recursive: true });
    await writeFile(dst, await readFile(unit));
    files.push('usr/lib/systemd/system/sextant-agent.service');
  }
  // Recorded in manifest.json: the agent is built from this checkout, not from a pinned
  // package, so a rebuild from another commit differs here first (and `image diff` says so).
  const sha256: Record<string, string> = {};
  for (const f of files) sha256[f] = await sha256File(path.join(treeDir, f));
  return { files, sha256 };
}
