import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { debianPackage } from './debian-package.js';
import { REPO_ROOT } from './paths.js';

export { buildUki } from '../../measurements/uki/build.js';

/** Debian 12's systemd-boot-efi stub (systemd 252), installed on the host. */
export const HOST_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
export const SYSTEMD_MEASURE = '/usr/lib/systemd/systemd-measure';

/**
 * Debian 13's stub (systemd 257), fetched once (private apt state; the host's apt configuration
 * is not touched). Test files run in parallel: the fetch script's lock makes one fetch and the
 * others wait, and the returned path is never replaced while another file reads it.
 */
export async function trixieStub(): Promise<string> {
  return path.join(await debianPackage('trixie', 'systemd-boot-efi'), 'usr/lib/systemd/boot/efi/linuxx64.efi.stub');
}

/** Debian sid's systemd-boot-efi stub (systemd 262.1 when the fixtures were captured), fetched privately. */
export async function sidStub(): Promise<string> {
  return path.join(await debianPackage('sid', 'systemd-boot-efi'), 'usr/lib/systemd/boot/efi/linuxx64.efi.stub');
}

/** Files, except cmdline and osrel, which take ukify's TEXT or @PATH. */
export interface UkifyParts {
  stub: string;
  linux: string;
  initrd: string;
  cmdline: string;
  osrel: string;
  uname: string;
}

/**
 * Builds a UKI with sid's ukify (systemd-ukify), run by the host's python3 with sid's pefile on
 * PYTHONPATH: both unpacked privately into .cache/debian, nothing installed into the host. ukify
 * lays the sections out itself (and merges the stub's and the kernel's .sbat), so its UKI differs
 * from an objcopy-built one in bytes and sections. Its output is reproducible for equal inputs.
 */
export async function buildWithUkify(parts: UkifyParts, out: string): Promise<{ version: string }> {
  const ukify = path.join(await debianPackage('sid', 'systemd-ukify'), 'usr/lib/systemd/ukify');
  const pefile = path.join(await debianPackage('sid', 'python3-pefile'), 'usr/lib/python3/dist-packages');
  const env = { ...process.env, PYTHONPATH: pefile, SOURCE_DATE_EPOCH: '0' };
  const version = (await execa('/usr/bin/python3', [ukify, '--version'], { env })).stdout.trim();
  await execa(
    '/usr/bin/python3',
    [ukify, 'build', `--stub=${parts.stub}`, `--linux=${parts.linux}`, `--initrd=${parts.initrd}`, `--cmdline=${parts.cmdline}`,
      `--os-release=${parts.osrel}`, `--uname=${parts.uname}`, `--output=${out}`],
    { env, timeout: 120_000 },
  );
  return { version };
}

/** The newest kernel in /boot: an EFI-stub bzImage, i.e. itself a PE file. */
export async function hostKernel(): Promise<string> {
  const k = (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  if (!k) throw new Error('no /boot/vmlinuz-* on this machine: install linux-image-amd64 (scripts/system-packages.txt)');
  return path.join('/boot', k);
}
