/**
 * The node image a local cluster boots: a `sextant image build` output folder given by the
 * caller, or the one built from this checkout into .cache/e2e-image (the e2e suite builds and
 * reuses the same folder), rebuilt when the source tree changed. The build puts the strict
 * kubeadm stand-in (test/fixtures/kubeadm-standin: it validates its arguments and the
 * JoinConfiguration, then exits 0) into the image as /usr/bin/kubeadm: there is no real
 * Kubernetes here, so "joined" means the agent ran kubeadm join with a valid configuration.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../lib/exec.js';
import { SextantError } from '../lib/errors.js';
import { sha256File } from '../lib/hash-file.js';
import { REPO_ROOT, SEXTANT_BIN } from './paths.js';
import type { Log } from './swtpm.js';

export const IMAGE_FILES = { disk: 'sextant-node.raw', measurements: 'measurements.json' } as const;
export const IMAGE_CACHE = path.join(REPO_ROOT, '.cache/e2e-image');
export const KUBEADM_STANDIN = path.join(REPO_ROOT, 'test/fixtures/kubeadm-standin/kubeadm');

export interface NodeImage {
  dir: string;
  /** The measurements signer's public key when known (else the measurements are re-signed with a throwaway key). */
  measurementsKey?: string;
  built: boolean;
}

/** A folder holding a built image's disk and measurements (FILE_NOT_FOUND otherwise). */
export function checkImageDir(dir: string): NodeImage {
  const abs = path.resolve(dir);
  for (const f of Object.values(IMAGE_FILES)) {
    if (!existsSync(path.join(abs, f))) throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${abs} has no ${f} (a \`sextant image build --out DIR\` folder)` });
  }
  return { dir: abs, built: false };
}

/**
 * The image's version: `image.version` of its measurements.json (what the key service orders
 * measurement sets by). Undefined when the file has none.
 */
export function imageVersionOf(dir: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, IMAGE_FILES.measurements), 'utf8')) as { image?: { version?: unknown } };
    return typeof m.image?.version === 'string' ? m.image.version : undefined;
  } catch {
    return undefined;
  }
}

/** What the image is built from: the committed tree plus uncommitted changes. */
async function sourceKey(): Promise<string> {
  try {
    const tree = (await run('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD^{tree}'])).stdout.trim();
    const diff = (await run('git', ['-C', REPO_ROOT, 'diff', 'HEAD'])).stdout;
    return createHash('sha256').update(tree).update(diff).digest('hex');
  } catch {
    // Not a git checkout (e.g. an exported tree in CI): no cache key, so the image is built.
    return `unversioned-${process.pid}-${Date.now()}`;
  }
}

/** The cached build for the current source tree, or undefined when there is none. */
export async function cachedNodeImage(): Promise<NodeImage | undefined> {
  const dir = path.join(IMAGE_CACHE, 'out');
  const key = await readFile(path.join(IMAGE_CACHE, 'source-key'), 'utf8').catch(() => '');
  if (key !== (await sourceKey()) || !existsSync(path.join(dir, IMAGE_FILES.disk))) return undefined;
  return { dir, measurementsKey: path.join(IMAGE_CACHE, 'sign.pub'), built: false };
}

/**
 * The cached build for this source tree, or a new build (`sextant image build` with the
 * kubeadm stand-in; ~10-30 min on 2 cores). `log` gets each command and the build's progress.
 */
export async function resolveNodeImage(o: { log?: Log; signal?: AbortSignal } = {}): Promise<NodeImage> {
  const cached = await cachedNodeImage();
  if (cached) {
    o.log?.(`reusing the image built from this source tree: ${cached.dir}`);
    return cached;
  }
  const key = await sourceKey();
  const dir = path.join(IMAGE_CACHE, 'out');
  await rm(IMAGE_CACHE, { recursive: true, force: true });
  await mkdir(IMAGE_CACHE, { recursive: true });
  const sign = path.join(IMAGE_CACHE, 'sign.pem');
  const pub = path.join(IMAGE_CACHE, 'sign.pub');
  await writeFile(sign, '', { mode: 0o600 });
  await run('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', sign], { log: o.log });
  await run('openssl', ['pkey', '-in', sign, '-pubout', '-out', pub], { log: o.log });
  const components = path.join(IMAGE_CACHE, 'components.json');
  await writeFile(
    components,
    JSON.stringify([{ name: 'kubeadm', sha256: await sha256File(KUBEADM_STANDIN), path: KUBEADM_STANDIN, installPath: '/usr/bin/kubeadm', url: 'test stand-in (test/fixtures/kubeadm-standin)' }]),
  );
  o.log?.(`building the node image into ${dir} (sextant image build; ~10-30 min on 2 cores)`);
  const t0 = Date.now();
  const r = await buildWithCli(['image', 'build', '--out', dir, '--sign-key', sign, '--components', components], o);
  if (r.code !== 0) throw new SextantError({ code: 'BUILD_FAILED', message: `sextant image build failed (${String(r.code)}):\n${r.stderrTail}` });
  o.log?.(`image built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await writeFile(path.join(IMAGE_CACHE, 'source-key'), key);
  return { dir, measurementsKey: pub, built: true };
}

/** The CLI as a child (the build drives mkosi for many minutes); its stderr lines go to `log`. */
function buildWithCli(args: string[], o: { log?: Log; signal?: AbortSignal }): Promise<{ code: number | null; stderrTail: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SEXTANT_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], signal: o.signal });
    let tail = '';
    let partial = '';
    child.stderr!.on('data', (b: Buffer) => {
      const text = partial + b.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) o.log?.(`image build: ${l}`);
      tail = (tail + b.toString()).slice(-3000);
    });
    child.once('error', () => resolve({ code: -1, stderrTail: tail }));
    child.once('close', (code) => resolve({ code, stderrTail: tail }));
  });
}
