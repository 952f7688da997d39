import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import { sha256File } from '../../lib/hash-file.js';
import { ARTIFACTS, type BuiltArtifact, type SignFile } from '../build.js';
import { parseSums } from '../reproduce.js';
import { cloudMeasurementsName, exportCloudImages, type CloudFormat } from './export.js';

export interface ExportResult {
  outDir: string;
  artifacts: BuiltArtifact[];
}

/**
 * Writes cloud images of an existing release folder into `outDir` (with its own SHA256SUMS),
 * the same bytes `image build --format` writes: the disk is checked against the release's
 * SHA256SUMS first, and the time is the release's SourceDateEpoch (manifest.json).
 */
export async function exportRelease(
  dir: string,
  outDir: string,
  formats: CloudFormat[],
  opts: { time?: number; signKey?: string; sign?: SignFile; log?: (l: string) => void } = {},
): Promise<ExportResult> {
  const read = async (name: string): Promise<Buffer> =>
    readFile(path.join(dir, name)).catch((cause: unknown) => {
      throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${dir} is not a release folder: cannot read ${name}`, cause });
    });
  const sums = parseSums((await read(ARTIFACTS.sums)).toString('utf8'));
  const manifest = JSON.parse((await read(ARTIFACTS.manifest)).toString('utf8')) as { sourceDateEpoch?: number };
  const time = opts.time ?? manifest.sourceDateEpoch;
  if (time === undefined) throw new SextantError({ code: 'USAGE', message: `${dir}/manifest.json records no sourceDateEpoch (an older release): give --time (the configuration's SourceDateEpoch)` });
  const disk = path.join(dir, ARTIFACTS.disk);
  const diskSha256 = await sha256File(disk);
  if (sums.get(ARTIFACTS.disk) !== diskSha256) {
    throw new SextantError({ code: 'IMAGE_MISMATCH', message: `${disk} is not the disk the release's SHA256SUMS lists (${sums.get(ARTIFACTS.disk)?.slice(0, 16) ?? 'absent'}, the file is ${diskSha256.slice(0, 16)})` });
  }
  const measurements = await read(ARTIFACTS.measurements);
  if (sums.get(ARTIFACTS.measurements) !== undefined && (await sha256File(path.join(dir, ARTIFACTS.measurements))) !== sums.get(ARTIFACTS.measurements)) {
    throw new SextantError({ code: 'IMAGE_MISMATCH', message: `${dir}/${ARTIFACTS.measurements} is not the one the release's SHA256SUMS lists` });
  }
  await mkdir(outDir, { recursive: true });
  const written = await exportCloudImages({ disk, measurements, outDir, formats, time, diskSha256, log: opts.log });
  if (opts.signKey && opts.sign) for (const f of formats) await opts.sign(path.join(outDir, cloudMeasurementsName(f)), opts.signKey);
  const artifacts: BuiltArtifact[] = [];
  for (const name of written.sort()) artifacts.push({ name, sha256: await sha256File(path.join(outDir, name)) });
  await writeFile(path.join(outDir, ARTIFACTS.sums), artifacts.map((a) => `${a.sha256}  ${a.name}\n`).join(''));
  return { outDir, artifacts };
}
