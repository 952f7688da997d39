import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT } from './paths.js';

export { buildUki } from '../../measurements/uki/build.js';

/** Debian 12's systemd-boot-efi stub (systemd 252), installed on the host. */
export const HOST_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
/** Debian 13's stub (systemd 257), fetched by scripts/fetch-trixie-stub.sh into .cache/. */
export const TRIXIE_STUB = path.join(REPO_ROOT, '.cache/trixie-stub/usr/lib/systemd/boot/efi/linuxx64.efi.stub');
export const SYSTEMD_MEASURE = '/usr/lib/systemd/systemd-measure';

/** Fetches the trixie stub once (private apt state; the host's apt configuration is not touched). */
export async function trixieStub(): Promise<string> {
  if (!existsSync(TRIXIE_STUB)) await execa('sh', [path.join(REPO_ROOT, 'scripts/fetch-trixie-stub.sh')], { timeout: 300_000 });
  return TRIXIE_STUB;
}

/** The newest kernel in /boot: an EFI-stub bzImage, i.e. itself a PE file. */
export async function hostKernel(): Promise<string> {
  const k = (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  if (!k) throw new Error('no /boot/vmlinuz-* on this machine: install linux-image-amd64 (scripts/system-packages.txt)');
  return path.join('/boot', k);
}
