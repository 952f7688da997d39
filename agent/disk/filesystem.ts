import { mkdir } from 'node:fs/promises';
import { fail } from '../../lib/errors.js';
import type { ExecLogger } from '../../lib/exec.js';
import { describeSignature, probeSignature, type BlkidSignature } from './blkid.js';
import { STATE_LABEL } from './constants.js';
import type { Runner } from './runner.js';

/**
 * Whether to run mkfs on the opened mapping. The token's `filesystem` field is the journal:
 * sextant sets it to ext4 only after mkfs finished, and mounts only after that, so while it
 * says `pending` nothing but sextant's own mkfs ever wrote through the mapping.
 */
export type FilesystemAction = 'mkfs' | 'record' | 'none';

export function filesystemAction(token: 'pending' | 'ext4', found: BlkidSignature): FilesystemAction | { refuse: string } {
  const empty = Object.keys(found).length === 0;
  if (token === 'ext4') {
    if (found.TYPE === 'ext4') return 'none';
    // Never mkfs over a volume that once held the workloads' data.
    return { refuse: `the token records an ext4 filesystem but ${empty ? 'none' : describeSignature(found)} was found: not recreating it` };
  }
  if (empty) return 'mkfs'; // interrupted before or during our mkfs
  if (found.TYPE === 'ext4') return 'record'; // mkfs finished, crash before the token update
  return { refuse: `unexpected content inside the encrypted volume: ${describeSignature(found)}` };
}

export async function ensureFilesystem(
  runner: Runner,
  mapper: string,
  token: 'pending' | 'ext4',
  recordExt4: () => Promise<void>,
  log?: ExecLogger,
): Promise<FilesystemAction> {
  const action = filesystemAction(token, await probeSignature(runner, mapper, log));
  if (typeof action === 'object') fail('DISK_FOREIGN_DATA', action.refuse);
  // No -F: mkfs.ext4 itself refuses to overwrite a filesystem it recognizes.
  if (action === 'mkfs') await runner('mkfs.ext4', ['-q', '-L', STATE_LABEL, '-E', 'nodiscard', mapper], { log });
  if (action !== 'none') await recordExt4();
  return action;
}

/** Mounts the mapping unless it already is mounted there. */
export async function ensureMounted(runner: Runner, mapper: string, mountpoint: string, log?: ExecLogger): Promise<'mounted' | 'already'> {
  const cur = await runner('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', mountpoint], { okExitCodes: [1], log });
  const src = cur.stdout.trim();
  if (cur.exitCode === 0 && src) {
    if (src === mapper) return 'already';
    fail('DISK_STEP_FAILED', `${mountpoint} already has ${src} mounted, not ${mapper}`);
  }
  await mkdir(mountpoint, { recursive: true, mode: 0o700 });
  await runner('mount', ['-t', 'ext4', '-o', 'nodev,nosuid', mapper, mountpoint], { log });
  return 'mounted';
}
