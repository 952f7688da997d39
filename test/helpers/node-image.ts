/**
 * The node image the end-to-end test boots: SEXTANT_E2E_IMAGE_DIR (a `sextant image build`
 * output folder), or one built here with the kubeadm stand-in into .cache/e2e-image, reused
 * while the source tree is unchanged. And the tampered variant for the refusal test.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import { sha256File } from '../../lib/hash-file.js';
import { extractUkiFromDisk, replaceUkiOnDisk } from '../../image-builder/extract-uki.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { sextant } from './cli.js';
import { FIXTURES, REPO_ROOT } from './paths.js';

export interface NodeImage {
  dir: string;
  /** The measurements signer's public key when known (else the harness re-signs with a test key). */
  measurementsKey?: string;
  built: boolean;
}

async function exists(f: string): Promise<boolean> {
  return readFile(f).then(
    () => true,
    () => false,
  );
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

export async function resolveNodeImage(log?: (l: string) => void): Promise<NodeImage> {
  const given = process.env.SEXTANT_E2E_IMAGE_DIR;
  if (given) {
    const dir = path.resolve(given);
    for (const f of ['sextant-node.raw', 'measurements.json']) {
      if (!(await exists(path.join(dir, f)))) throw new SextantError({ code: 'FILE_NOT_FOUND', message: `SEXTANT_E2E_IMAGE_DIR=${dir} has no ${f}` });
    }
    return { dir, measurementsKey: process.env.SEXTANT_E2E_MEASUREMENTS_KEY, built: false };
  }
  const cache = path.join(REPO_ROOT, '.cache/e2e-image');
  const dir = path.join(cache, 'out');
  const key = await sourceKey();
  const stamp = path.join(cache, 'source-key');
  const pub = path.join(cache, 'sign.pub');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === key && (await exists(path.join(dir, 'sextant-node.raw')))) {
    log?.(`reusing the image built from this source tree: ${dir}`);
    return { dir, measurementsKey: pub, built: false };
  }
  await rm(cache, { recursive: true, force: true });
  await mkdir(cache, { recursive: true });
  const sign = path.join(cache, 'sign.pem');
  await run('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', sign], { log });
  await run('openssl', ['pkey', '-in', sign, '-pubout', '-out', pub], { log });
  const standin = path.join(FIXTURES, 'kubeadm-standin/kubeadm');
  const components = path.join(cache, 'components.json');
  await writeFile(
    components,
    JSON.stringify([{ name: 'kubeadm', sha256: await sha256File(standin), path: standin, installPath: '/usr/bin/kubeadm', url: 'test stand-in (test/fixtures/kubeadm-standin)' }]),
  );
  log?.(`building the node image into ${dir} (sextant image build; ~10-30 min on 2 cores)`);
  const t0 = Date.now();
  const r = await sextant(['image', 'build', '--out', dir, '--sign-key', sign, '--components', components], { timeoutMs: 60 * 60_000 });
  if (r.exitCode !== 0) throw new SextantError({ code: 'BUILD_FAILED', message: `sextant image build failed (${r.exitCode}):\n${r.stderr.slice(-3000)}` });
  log?.(`image built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await writeFile(stamp, key);
  return { dir, measurementsKey: pub, built: true };
}

interface SfdiskJson {
  partitiontable: { sectorsize?: number; partitions: { start: number; type: string }[] };
}

/**
 * A copy of the image whose UKI has one byte of its .cmdline section changed (a digit of a
 * kernel parameter, so the boot still works), written back onto the copy's ESP with mtools.
 * Nothing is re-signed: measurements.json still describes the original UKI.
 */
export async function tamperCmdline(imageDir: string, outRaw: string, log?: (l: string) => void): Promise<{ before: string; after: string }> {
  const raw = path.join(imageDir, 'sextant-node.raw');
  await run('cp', ['--sparse=always', raw, outRaw], { log });
  const uki = await extractUkiFromDisk(outRaw, log);
  const cmd = parsePe(uki).sections.find((s) => s.name === '.cmdline');
  if (!cmd) throw new SextantError({ code: 'IMAGE_MISMATCH', message: 'the UKI has no .cmdline section' });
  const start = cmd.pointerToRawData;
  const text = uki.subarray(start, start + cmd.virtualSize).toString('latin1');
  const at = text.search(/\d(?=\D*$)/);
  if (at < 0) throw new SextantError({ code: 'IMAGE_MISMATCH', message: `no digit to change in the command line "${text}"` });
  const before = text.replace(/\0+$/, '');
  uki[start + at] = text[at] === '0' ? 0x31 : 0x30;
  const after = uki.subarray(start, start + cmd.virtualSize).toString('latin1').replace(/\0+$/, '');
  const efi = outRaw + '.efi';
  await writeFile(efi, uki);
  await writeUkiToDisk(outRaw, efi, log);
  await rm(efi);
  return { before, after };
}

/** Replaces the UKI the firmware boots (EFI/BOOT/BOOTX64.EFI on the ESP) in a disk image, with mtools. */
export async function writeUkiToDisk(raw: string, efi: string, log?: (l: string) => void): Promise<void> {
  await replaceUkiOnDisk(raw, efi, { log });
}

/** SHA-256 of a whole disk image file (the state disk "unchanged" check). */
export async function diskSha256(file: string): Promise<string> {
  return sha256File(file);
}

/** The first `bytes` of the state partition (LUKS2 header + keyslots), copied out for cryptsetup on the host. */
export async function copyPartitionHead(disk: string, out: string, bytes = 16 * 1024 * 1024): Promise<void> {
  const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as SfdiskJson;
  const p = table.partitiontable.partitions[0];
  const fh = await (await import('node:fs/promises')).open(disk, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, p.start * (table.partitiontable.sectorsize ?? 512));
    await writeFile(out, buf);
  } finally {
    await fh.close();
  }
}
