import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasTool, run } from '../lib/exec.js';
import { ARTIFACTS, buildImage, type BuildOptions } from './build.js';
import { sha256File } from '../lib/hash-file.js';
import { diffReleases, type ReleaseDiff } from './diff.js';
import { SextantError } from '../lib/errors.js';
import type { UkiSigning } from './secure-boot.js';
import { parseCloudFormats, type CloudFormat } from './cloud/export.js';

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

/**
 * What a rebuild repeats from the release's manifest: its cloud formats, and for a signed
 * release without the db key given, the release's own signature (it fits only a bit-identical
 * UKI). A release whose PCR 7 was predicted needs its key folder again (`sbKeysDir`): the
 * keys are inputs, not in the release.
 */
async function releaseInputs(dir: string): Promise<{ signing?: UkiSigning; cloudFormats?: CloudFormat[] }> {
  const manifest = JSON.parse(await readFile(path.join(dir, ARTIFACTS.manifest), 'utf8')) as { secureBoot?: { signed?: boolean }; cloudFormats?: string[] };
  return {
    signing: manifest.secureBoot?.signed ? { kind: 'release-signature', signedUki: path.join(dir, ARTIFACTS.uki) } : undefined,
    // The release's cloud images are rebuilt and compared too.
    cloudFormats: manifest.cloudFormats ? parseCloudFormats(manifest.cloudFormats.join(',')) : undefined,
  };
}

async function assertKeysGiven(dir: string, sbKeysDir: string | undefined): Promise<void> {
  const m = JSON.parse(await readFile(path.join(dir, ARTIFACTS.measurements), 'utf8')) as { pcrs?: Record<string, unknown> };
  if (m.pcrs?.['7'] !== undefined && !sbKeysDir) {
    throw new SextantError({ code: 'USAGE', message: `${dir} predicts PCR 7 from a Secure Boot key folder: give it again with --sb-keys` });
  }
}

/** Rebuilds the release in `dir` from its package lock and compares every artifact's digest. */
export async function reproduceImage(
  dir: string,
  opts: Omit<BuildOptions, 'outDir' | 'lockFile'> & { keepDir?: string },
): Promise<ReproduceResult> {
  await assertKeysGiven(dir, opts.sbKeysDir);
  const expected = parseSums(await readFile(path.join(dir, ARTIFACTS.sums), 'utf8'));
  // The bundle holds SHA256SUMS, so it is compared beside the listed artifacts.
  expected.set(ARTIFACTS.bundle, await sha256File(path.join(dir, ARTIFACTS.bundle)));
  const release = await releaseInputs(dir);
  const ukiSigning = opts.ukiSigning ?? release.signing;
  const cloudFormats = opts.cloudFormats ?? release.cloudFormats;
  const out = opts.keepDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sextant-reproduce-')));
  try {
    // The build hashed every artifact (the bundle too) as it wrote them: no second read.
    const built = await buildImage({ ...opts, ukiSigning, cloudFormats, outDir: out, lockFile: path.join(dir, ARTIFACTS.lock) });
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
