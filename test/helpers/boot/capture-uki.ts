import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hash, toHex } from '../../../lib/bytes.js';
import { buildUki } from '../../../measurements/uki/build.js';
import { buildWithUkify, HOST_STUB, sidStub, trixieStub } from '../uki.js';
import { buildCaptureInitrd } from './capture-initrd.js';

/**
 * The command line of every capture UKI: serial console; a panic ends the VM (-no-reboot);
 * no_timer_check because a TCG guest on a busy host can miss the IO-APIC timer check and panic.
 */
export const CAPTURE_CMDLINE = 'console=ttyS0 panic=-1 no_timer_check';
export const CAPTURE_OSREL = 'ID=sextant-capture\nNAME="sextant boot capture"\nVERSION_ID=1\n';

/** Where a recipe's systemd-stub comes from: the host's Debian 12 package, or Debian 13 / sid's, fetched privately. */
export type StubSource = 'host' | 'trixie' | 'sid';

/** One UKI a fixture is captured from; the name is the fixture folder under test/fixtures/boots. */
export interface CaptureRecipe {
  name: string;
  stub: StubSource;
  /** Add a .uname section as ukify does (only meaningful for stubs >= 254). */
  withUname: boolean;
  /** objcopy (measurements/uki/build.ts, as sextant's image builder does) or sid's ukify. */
  builder: 'objcopy' | 'ukify';
}

export const CAPTURE_RECIPES: readonly CaptureRecipe[] = [
  { name: 'bookworm-stub252', stub: 'host', withUname: false, builder: 'objcopy' },
  { name: 'trixie-stub257', stub: 'trixie', withUname: true, builder: 'objcopy' },
  { name: 'sid-stub262', stub: 'sid', withUname: true, builder: 'objcopy' },
  { name: 'sid-stub262-ukify', stub: 'sid', withUname: true, builder: 'ukify' },
];

/** The stub file of a source, fetched first if needed (private apt state, nothing installed). */
export async function stubFile(source: StubSource): Promise<string> {
  if (source === 'host') return HOST_STUB;
  if (source === 'trixie') return trixieStub();
  return sidStub();
}

export interface BuiltCaptureUki {
  path: string;
  /** What went in, with hashes, so a later rebuild can prove it used the same inputs. */
  recipe: {
    builder: string;
    stub: { path: string; version: string; sha256: string };
    kernel: { path: string; release: string; sha256: string };
    initrd: { sha256: string; bytes: number; contents: string };
    cmdline: string;
    osrel: string;
    uname: string | null;
    uki: { sha256: string; bytes: number };
  };
}

/** The kernel release installed on the host (the one /boot/vmlinuz-* and /lib/modules agree on). */
export async function hostKernelRelease(): Promise<string> {
  const fromEnv = process.env.SEXTANT_BOOT_KERNEL_RELEASE;
  if (fromEnv) return fromEnv;
  const boots = (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).map((f) => f.slice('vmlinuz-'.length));
  const mods = new Set(await readdir('/lib/modules'));
  const both = boots.filter((r) => mods.has(r)).sort();
  if (both.length === 0) throw new Error('no kernel with modules found in /boot and /lib/modules (install linux-image-amd64)');
  return both[both.length - 1];
}

/** The systemd-stub version string from its .sdmagic section ("systemd-stub 252.39-1~deb12u2"). */
export function stubVersion(stub: Buffer): string {
  const m = /#### LoaderInfo: ([^#]*?) ####/.exec(stub.toString('latin1'));
  return m ? m[1] : 'unknown';
}

/** Builds the capture UKI for a recipe: host kernel, capture initrd, fixed cmdline and os-release. */
export async function buildCaptureUki(recipe: CaptureRecipe, out: string): Promise<BuiltCaptureUki> {
  const release = await hostKernelRelease();
  const kernel = `/boot/vmlinuz-${release}`;
  const initrd = await buildCaptureInitrd({ kernelRelease: release });
  const stub = await stubFile(recipe.stub);
  const stubBytes = await readFile(stub);
  const uname = recipe.withUname ? release : undefined;
  let builder: string;
  if (recipe.builder === 'ukify') {
    if (uname === undefined) throw new Error(`recipe ${recipe.name}: ukify always writes .uname`);
    builder = `${await ukifyBuild(stub, kernel, initrd, uname, out)}, SOURCE_DATE_EPOCH=0`;
  } else {
    await buildUki(
      {
        stub,
        linux: { file: kernel },
        initrd,
        cmdline: Buffer.from(CAPTURE_CMDLINE),
        osrel: Buffer.from(CAPTURE_OSREL),
        uname: uname === undefined ? undefined : Buffer.from(uname),
      },
      out,
    );
    await zeroPeCheckSum(out);
    builder = 'measurements/uki/build.ts (objcopy, COFF TimeDateStamp zeroed) + PE CheckSum zeroed';
  }
  const uki = await readFile(out);
  return {
    path: out,
    recipe: {
      builder,
      stub: { path: stub, version: stubVersion(stubBytes), sha256: toHex(hash('sha256', stubBytes)) },
      kernel: { path: kernel, release, sha256: toHex(hash('sha256', await readFile(kernel))) },
      initrd: {
        sha256: toHex(hash('sha256', initrd)),
        bytes: initrd.length,
        contents: 'newc cpio (test/helpers/boot/capture-initrd.ts): /init, busybox-static, virtio_blk modules',
      },
      cmdline: CAPTURE_CMDLINE,
      osrel: CAPTURE_OSREL,
      uname: uname ?? null,
      uki: { sha256: toHex(hash('sha256', uki)), bytes: uki.length },
    },
  };
}

/** ukify build with the capture inputs; returns ukify's version line. */
async function ukifyBuild(stub: string, kernel: string, initrd: Buffer, uname: string, out: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-ukify-'));
  try {
    const f = (n: string): string => path.join(dir, n);
    await writeFile(f('initrd'), initrd);
    await writeFile(f('cmdline'), CAPTURE_CMDLINE);
    await writeFile(f('osrel'), CAPTURE_OSREL);
    const { version } = await buildWithUkify(
      { stub, linux: kernel, initrd: f('initrd'), cmdline: `@${f('cmdline')}`, osrel: `@${f('osrel')}`, uname },
      out,
    );
    return version;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the capture initrd next to the UKI (for independent checks such as PCR 9's initrd digest). */
export async function writeCaptureInitrd(out: string): Promise<Buffer> {
  const initrd = await buildCaptureInitrd({ kernelRelease: await hostKernelRelease() });
  await writeFile(out, initrd);
  return initrd;
}

/**
 * objcopy writes a PE CheckSum computed over the "now" TimeDateStamp it stamped. buildUki zeroes
 * the stamp (Authenticode covers it) but not the checksum, which Authenticode skips: the PCRs
 * are stable, the file bytes are not. Zeroing it (UEFI ignores an application's checksum) makes
 * the capture UKI bit-identical across rebuilds, so a fixture names exactly the file it booted.
 */
export async function zeroPeCheckSum(file: string): Promise<void> {
  const pe = await readFile(file);
  pe.writeUInt32LE(0, pe.readUInt32LE(0x3c) + 24 + 64); // PE signature + COFF header, then CheckSum at 64
  await writeFile(file, pe);
}
