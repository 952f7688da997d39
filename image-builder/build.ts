import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { stageAgentTree } from './agent-bundle.js';
import { stageComponents, type ComponentPin, type ComponentRecord } from './components.js';
import { locateMkosi, runMkosi } from './mkosi.js';
import { sha256File } from '../lib/hash-file.js';
import { diffLocks, lockFromManifest, parsePackageLock, pinnedPackageSpecs, type PackageLock } from './package-lock.js';
import { writeReleaseBundle } from './release-bundle.js';
import { ensureToolsTree } from './tools-tree.js';
import { configSourceDateEpoch, planSecureBoot, signBuiltUki, type SecureBootRecord, type UkiSigning } from './secure-boot.js';
import { osslsigncodeVersion } from './sign-uki.js';
import { run } from '../lib/exec.js';
import type { SecureBootState } from '../measurements/secureboot/predict.js';
import { CLOUD_ARTIFACTS, cloudMeasurementsName, exportCloudImages, type CloudFormat } from './cloud/export.js';

/** File names in the output folder; `image reproduce` and the e2e harness rely on them. */
export const ARTIFACTS = {
  disk: 'sextant-node.raw',
  uki: 'sextant-node.efi',
  measurements: 'measurements.json',
  lock: 'package-lock.json',
  manifest: 'manifest.json',
  sums: 'SHA256SUMS',
  bundle: 'sextant-node-release.tar',
} as const;

/**
 * Turns a built UKI into the bytes of measurements.json (the measurement engine's job); with
 * `secureBoot`, PCR 7 too, predicted from those key databases and the UKI's signer.
 */
export type MeasureUki = (ukiFile: string, image: { name: string; version: string; debug: boolean }, secureBoot?: SecureBootState) => Promise<Buffer>;
/** Writes `<file>.sig` for measurements.json. */
export type SignFile = (file: string, keyFile: string) => Promise<void>;

export interface BuildOptions {
  repoRoot: string;
  configDir: string;
  outDir: string;
  /** A package lock from an earlier build: install exactly those versions, refuse others. */
  lockFile?: string;
  components?: ComponentPin[];
  signKey?: string;
  /** Sign the UKI for Secure Boot (Authenticode, reproducible); unset: an unsigned UKI, said so in the manifest. */
  ukiSigning?: UkiSigning;
  /** A Secure Boot key folder (PK/, KEK/, db/, dbx/): measurements.json then enforces PCR 7. */
  sbKeysDir?: string;
  /** Cloud disk formats to write beside the raw disk, each with its measurements file. */
  cloudFormats?: CloudFormat[];
  /** Debug variant: a serial root shell; marked as such in the manifest and measurements. */
  debug?: boolean;
  imageVersion?: string;
  /** Tools tree and package cache (default: <repoRoot>/.cache); a fresh folder means a cold build. */
  cacheDir?: string;
  measure: MeasureUki;
  sign?: SignFile;
  onStage?: (stage: string) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface BuiltArtifact {
  name: string;
  sha256: string;
}

export interface BuildResult {
  outDir: string;
  artifacts: BuiltArtifact[];
  components: ComponentRecord[];
  notes: string[];
  secureBoot: SecureBootRecord;
  seconds: number;
}

async function toolVersions(toolsTree: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const status = path.join(toolsTree, 'var/lib/dpkg/status');
  if (existsSync(status)) {
    const text = await readFile(status, 'utf8');
    for (const block of text.split('\n\n')) {
      const name = /^Package: (.+)$/m.exec(block)?.[1];
      const version = /^Version: (.+)$/m.exec(block)?.[1];
      if (name && version && /^(systemd|systemd-ukify|systemd-repart|systemd-boot-efi|erofs-utils|dosfstools)$/.test(name)) out[name] = version;
    }
  }
  return out;
}

/** The host tools that sign the UKI and write it onto the ESP (not in the tools tree). */
async function signingToolVersions(): Promise<Record<string, string>> {
  const mtools = (await run('mcopy', ['--version'])).stdout.split('\n')[0].replace(/^mcopy \(GNU mtools\)\s*/, '');
  return { osslsigncode: await osslsigncodeVersion(), mtools };
}

/** The host tools that write GCP's tar.gz (their versions decide its bytes). */
async function archiveToolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string): Promise<string> => (await run(cmd, ['--version'])).stdout.split('\n')[0].replace(/^.*?([0-9][0-9.]*)\s*$/, '$1');
  return { tar: await first('tar'), gzip: await first('gzip') };
}

/**
 * Builds the node image with mkosi and writes the release folder: disk image, UKI,
 * measurements.json (+ .sig), package lock, manifest, SHA256SUMS and a reproducible tar.
 */
export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const t0 = Date.now();
  const stage = (s: string): void => o.onStage?.(s);
  const cache = o.cacheDir ?? path.join(o.repoRoot, '.cache');
  const packageCache = path.join(cache, 'mkosi-packages');
  const mkosi = locateMkosi(o.repoRoot);
  const notes: string[] = [];
  const lock: PackageLock | undefined = o.lockFile ? parsePackageLock(await readFile(o.lockFile, 'utf8'), o.lockFile) : undefined;
  const sbPlan = await planSecureBoot({ signing: o.ukiSigning, keysDir: o.sbKeysDir }); // before minutes of mkosi

  stage('tools tree (Debian trixie: ukify, systemd-repart, systemd-measure)');
  const tools = await ensureToolsTree(mkosi, path.join(o.configDir, 'tools'), cache, packageCache, {
    onStage: (s) => stage(`tools: ${s}`),
    log: o.log,
    signal: o.signal,
  });

  const work = await mkdtemp(path.join(os.tmpdir(), 'sextant-build-'));
  try {
    stage('agent bundle (esbuild)');
    const extra = path.join(work, 'extra');
    const agent = await stageAgentTree(o.repoRoot, extra);
    const components = await stageComponents(o.components ?? [], extra);
    const missing = components.filter((c) => !c.included);
    if ((o.components ?? []).length === 0) notes.push('no Kubernetes components given: the image has no kubeadm/kubelet/kubectl/CNI plugins');
    for (const c of missing) notes.push(`component ${c.name}: ${c.note}`);

    const mkosiOut = path.join(work, 'out');
    await mkdir(mkosiOut, { recursive: true });
    const args = [
      '-C', o.configDir,
      '--tools-tree', tools,
      '--output-dir', mkosiOut,
      '--package-cache-dir', packageCache,
      '--extra-tree', extra,
      '--image-version', o.imageVersion ?? '0.1.0',
    ];
    if (o.debug) args.push('--include', path.join(o.configDir, 'debug'));
    for (const spec of lock ? pinnedPackageSpecs(lock) : []) args.push('--package', spec);
    args.push('-f', 'build');
    stage('mkosi build');
    await runMkosi(mkosi, args, { onStage: (s) => stage(`mkosi: ${s}`), log: o.log, signal: o.signal });

    stage('package lock');
    const builtLock = await lockFromManifest(path.join(mkosiOut, 'sextant-node.manifest'), packageCache);
    if (lock) {
      const diff = diffLocks(lock, builtLock);
      if (diff.length > 0) {
        throw new SextantError({
          code: 'COMPONENT_HASH_MISMATCH',
          message: `the build used packages that differ from ${o.lockFile}: ${diff
            .slice(0, 8)
            .map((d) => `${d.name} (locked ${d.expected ?? 'absent'}, got ${d.actual ?? 'absent'})`)
            .join('; ')}`,
        });
      }
    }

    stage(sbPlan.signing ? 'Secure Boot: sign the UKI, put it onto the ESP' : 'Secure Boot: the UKI stays unsigned');
    const time = await configSourceDateEpoch(path.join(o.configDir, 'mkosi.conf'));
    const secureBoot = await signBuiltUki(path.join(mkosiOut, 'sextant-node.efi'), path.join(mkosiOut, 'sextant-node.raw'), sbPlan, time, o.log);
    if (!secureBoot.signed) notes.push(secureBoot.note);

    await mkdir(o.outDir, { recursive: true });
    const stale = new Set<string>([...Object.values(ARTIFACTS), ...Object.values(CLOUD_ARTIFACTS)]);
    for (const f of await readdir(o.outDir)) if (stale.has(f) || f.endsWith('.sig') || /^measurements-[a-z]+\.json$/.test(f)) await rm(path.join(o.outDir, f));
    await copyFile(path.join(mkosiOut, 'sextant-node.raw'), path.join(o.outDir, ARTIFACTS.disk));
    await copyFile(path.join(mkosiOut, 'sextant-node.efi'), path.join(o.outDir, ARTIFACTS.uki));
    await writeFile(path.join(o.outDir, ARTIFACTS.lock), JSON.stringify(builtLock, null, 2) + '\n');

    stage('measurements (precomputed from the built UKI)');
    const image = { name: 'sextant-node', version: o.imageVersion ?? '0.1.0', debug: o.debug === true };
    await writeFile(path.join(o.outDir, ARTIFACTS.measurements), await o.measure(path.join(o.outDir, ARTIFACTS.uki), image, secureBoot.signed ? sbPlan.keys : undefined));
    if (o.signKey) {
      if (!o.sign) throw new SextantError({ code: 'INTERNAL', message: 'no signer configured' });
      await o.sign(path.join(o.outDir, ARTIFACTS.measurements), o.signKey);
    }
    const diskSha256 = await sha256File(path.join(o.outDir, ARTIFACTS.disk));
    const cloudFiles: string[] = [];
    if (o.cloudFormats?.length) {
      stage(`cloud images: ${o.cloudFormats.join(', ')}`);
      const measurements = await readFile(path.join(o.outDir, ARTIFACTS.measurements));
      cloudFiles.push(...(await exportCloudImages({ disk: path.join(o.outDir, ARTIFACTS.disk), measurements, outDir: o.outDir, formats: o.cloudFormats, time, diskSha256, log: o.log })));
      if (o.signKey && o.sign) for (const f of o.cloudFormats) await o.sign(path.join(o.outDir, cloudMeasurementsName(f)), o.signKey);
    }

    stage('manifest, SHA256SUMS, release bundle');
    const manifest = {
      image,
      packages: builtLock.packages.map((p) => `${p.name}=${p.version}`),
      components,
      agent: agent.sha256,
      tools: {
        ...(await toolVersions(tools)),
        ...(secureBoot.signed && (await signingToolVersions())),
        ...(o.cloudFormats?.includes('gcp') && (await archiveToolVersions())),
      },
      sourceDateEpoch: time,
      secureBoot,
      ...(o.cloudFormats?.length && { cloudFormats: o.cloudFormats }),
      notes,
    };
    await writeFile(path.join(o.outDir, ARTIFACTS.manifest), JSON.stringify(manifest, null, 2) + '\n');
    // measurements.json.sig stays a detached file beside the release: ECDSA signatures are
    // randomized, so listing or bundling it would make every signed build differ.
    const hashed: string[] = [ARTIFACTS.disk, ARTIFACTS.uki, ARTIFACTS.measurements, ARTIFACTS.lock, ARTIFACTS.manifest, ...cloudFiles];
    const artifacts: BuiltArtifact[] = [];
    for (const name of hashed.sort()) artifacts.push({ name, sha256: name === ARTIFACTS.disk ? diskSha256 : await sha256File(path.join(o.outDir, name)) });
    await writeFile(path.join(o.outDir, ARTIFACTS.sums), artifacts.map((a) => `${a.sha256}  ${a.name}\n`).join(''));
    // The bundle carries everything but the (large, sparse) disk images, which SHA256SUMS pins.
    const images = new Set<string>([ARTIFACTS.disk, ...Object.values(CLOUD_ARTIFACTS)]);
    const bundled = [...hashed.filter((n) => !images.has(n)), ARTIFACTS.sums];
    await writeReleaseBundle(o.outDir, bundled, path.join(o.outDir, ARTIFACTS.bundle));
    artifacts.push({ name: ARTIFACTS.bundle, sha256: await sha256File(path.join(o.outDir, ARTIFACTS.bundle)) });
    return { outDir: o.outDir, artifacts, components, notes, secureBoot, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
