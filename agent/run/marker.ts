import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fail } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/write-file-atomic.js';

/**
 * A small file inside the encrypted state disk saying which cluster and disk it belongs to.
 * The key already binds the disk to the cluster's master secret and the disk UUID; the
 * marker makes the binding visible (logs, `agent status`) and catches a disk carried over
 * from another cluster that shares a master secret or a restored backup. `joinedAt` records
 * that kubeadm join finished, so a crash between format and join resumes the join after a reboot.
 */
export interface StateDiskMarker {
  v: 1;
  clusterId: string;
  diskUuid: string;
  initializedAt: string;
  joinedAt?: string;
}

export const MARKER_FILE = 'sextant-state.json';

export function markerPath(mountpoint: string): string {
  return path.join(mountpoint, MARKER_FILE);
}

export async function readMarker(mountpoint: string): Promise<StateDiskMarker | undefined> {
  const file = markerPath(mountpoint);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    fail('IO_FAILED', `cannot read the state disk marker ${file}`, e);
  }
  let m: StateDiskMarker;
  try {
    m = JSON.parse(text) as StateDiskMarker;
  } catch (cause) {
    fail('DISK_FOREIGN_DATA', `the state disk marker ${file} is not JSON`, cause);
  }
  if (m?.v !== 1 || typeof m.clusterId !== 'string' || typeof m.diskUuid !== 'string' || typeof m.initializedAt !== 'string') {
    fail('DISK_FOREIGN_DATA', `the state disk marker ${file} is not a sextant marker`);
  }
  return m;
}

export async function writeMarker(mountpoint: string, m: StateDiskMarker): Promise<void> {
  await writeFileAtomic(markerPath(mountpoint), JSON.stringify(m, null, 2) + '\n', 0o600);
}
