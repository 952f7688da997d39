import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasTool, run } from '../lib/exec.js';
import { ARTIFACTS, buildImage, type BuildOptions } from './build.js';
import { sha256File } from '../lib/hash-file.js';
import { diffReleases, type ReleaseDiff } from './diff.js';

export interface ArtifactComparison {
  name: string;
  expected: string;
  actual?: string;
  same: boolean;
  /** diffoscope's summary of how the artifact differs, when diffoscope is installed. */
  diffoscope?: string;
}

export interface ReproduceResult {
  reproducible: boolean;
  artifacts: ArtifactComparison[];
  /** When not reproducible: which inputs and measured parts differ (agent sources, packages, ...). */
  cause?: ReleaseDiff;
}

export function parseSums(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (x) m.set(x[2], x[1]);
  }
  return m;
}

/** Rebuilds the release in `dir` from its package lock and compares every artifact's digest. */
export async function reproduceImage(
  dir: string,
  opts: Omit<BuildOptions, 'outDir' | 'lockFile'> & { keepDir?: string },
): Promise<ReproduceResult> {
  const expected = parseSums(await readFile(path.join(dir, ARTIFACTS.sums), 'utf8'));
  // The bundle holds SHA256SUMS, so it is compared beside the listed artifacts.
  expected.set(ARTIFACTS.bundle, await sha256File(path.join(dir, ARTIFACTS.bundle)));
  const out = opts.keepDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sextant-reproduce-')));
  try {
    // The build hashed every artifact (the bundle too) as it wrote them: no second read.
    const built = await buildImage({ ...opts, outDir: out, lockFile: path.join(dir, ARTIFACTS.lock) });
    const actual = new Map(built.artifacts.map((a) => [a.name, a.sha256]));
    const artifacts: ArtifactComparison[] = [];
    const diffoscope = await hasTool('diffoscope');
    for (const [name, digest] of expected) {
      const a = actual.get(name);
      const cmp: ArtifactComparison = { name, expected: digest, actual: a, same: a === digest };
      if (!cmp.same && a && diffoscope) {
        const r = await run('diffoscope', ['--text', '-', '--max-text-report-size', '20000', path.join(dir, name), path.join(out, name)], {
          okExitCodes: [1],
          log: opts.log,
        });
        cmp.diffoscope = r.stdout;
      }
      artifacts.push(cmp);
    }
    const reproducible = artifacts.every((a) => a.same);
    return { reproducible, artifacts, ...(!reproducible && { cause: await diffReleases(dir, out) }) };
  } finally {
    if (!opts.keepDir) await rm(out, { recursive: true, force: true });
  }
}
