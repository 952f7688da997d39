/**
 * Image build times: `sextant image build` warm (tools tree and package cache present)
 * against mkosi alone on the same configuration, tools tree, package cache and agent tree
 * (goal: sextant's extra work, i.e. agent bundle, lock, measurements, SHA256SUMS, bundle,
 * costs <= 1.2x mkosi's time). BENCH_IMAGE_COLD=1 also times a cold build into an empty
 * cache folder (downloads the tools tree and every package: minutes, needs the Debian mirror).
 *
 *   npm run bench image-build     (slow: not part of a plain `npm run bench`)
 */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../image-builder/build.js';
import { stageAgentTree } from '../image-builder/agent-bundle.js';
import { locateMkosi, runMkosi } from '../image-builder/mkosi.js';
import { measureBuiltUki } from '../image-builder/measure.js';
import { ensureToolsTree } from '../image-builder/tools-tree.js';
import { report, type Figure } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONFIG = path.join(ROOT, 'mkosi');

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'sextant-bench-image-'));
  const figures: Figure[] = [];
  try {
    const cache = path.join(ROOT, '.cache');
    const mkosi = locateMkosi(ROOT);
    const tools = await ensureToolsTree(mkosi, path.join(CONFIG, 'tools'), cache, path.join(cache, 'mkosi-packages'));
    // Warm means the package cache already holds every .deb (any earlier build); BENCH_IMAGE_WARMUP=1
    // runs one build first to make sure.
    if (process.env.BENCH_IMAGE_WARMUP === '1') await buildImage({ repoRoot: ROOT, configDir: CONFIG, outDir: path.join(work, 'warmup'), measure: measureBuiltUki });
    const sextantWarm = await seconds(() => buildImage({ repoRoot: ROOT, configDir: CONFIG, outDir: path.join(work, 'warm'), measure: measureBuiltUki }));

    const extra = path.join(work, 'extra');
    await stageAgentTree(ROOT, extra);
    const out = path.join(work, 'mkosi-out');
    await mkdir(out);
    const mkosiAlone = await seconds(() =>
      runMkosi(mkosi, ['-C', CONFIG, '--tools-tree', tools, '--output-dir', out, '--package-cache-dir', path.join(cache, 'mkosi-packages'), '--extra-tree', extra, '--image-version', '0.1.0', '-f', 'build']),
    );
    figures.push(
      { name: 'sextant image build, warm', value: sextantWarm, unit: 's' },
      { name: 'mkosi alone, same config and caches', value: mkosiAlone, unit: 's' },
      { name: 'ratio sextant / mkosi (goal <= 1.2)', value: sextantWarm / mkosiAlone, unit: 'x' },
    );
    if (process.env.BENCH_IMAGE_COLD === '1') {
      const coldCache = path.join(work, 'cold-cache');
      const cold = await seconds(() => buildImage({ repoRoot: ROOT, configDir: CONFIG, cacheDir: coldCache, outDir: path.join(work, 'cold'), measure: measureBuiltUki }));
      figures.push({ name: 'sextant image build, cold (empty caches)', value: cold, unit: 's' });
    }
    report('image-build', figures);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
