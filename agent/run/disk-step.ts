import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fail } from '../../lib/errors.js';
import type { AgentConfig } from '../config/config.js';
import type { PrepareResult } from '../disk/prepare.js';
import type { Clock, StateDiskOps } from './deps.js';
import { readMarker, writeMarker, type StateDiskMarker } from './marker.js';
import type { BootPath } from './status.js';

export interface DiskStepInput {
  config: AgentConfig;
  disk: StateDiskOps;
  clock: Clock;
  device: string;
  diskUuid: string;
  clusterId: string;
  /** Not zeroed here: the caller zeroes it right after this step. */
  key: Uint8Array;
  path: BootPath;
}

export interface DiskStepResult {
  /** One line for the console: "formatted, marker written" / "opened, marker present". */
  summary: string;
  state: 'formatted' | 'opened' | 'verified';
  found: PrepareResult['found'];
  steps: PrepareResult['steps'];
  luksUuid?: string;
  mountpoint?: string;
  marker: 'written' | 'written (was missing)' | 'present' | 'skipped (no device-mapper)';
  markerContent?: StateDiskMarker;
  bindMounts: { target: string; result: 'mounted' | 'already' }[];
  /** The path after reading the marker: a disk whose join never finished goes back to join. */
  path: BootPath;
  warnings: string[];
}

/**
 * Opens the state disk with the released key (format only if blank: agent/disk decides from
 * the bytes on the disk, never from the path), then checks or writes the marker, then the
 * bind mounts. With `stateDisk.deviceMapper: false` it stops after the format/header and key
 * check: open, mkfs, mount, marker and bind mounts need device-mapper.
 */
export async function runDiskStep(i: DiskStepInput): Promise<DiskStepResult> {
  const sd = i.config.stateDisk;
  const r = await i.disk.prepare({ device: i.device, key: i.key, open: sd.deviceMapper, mapperName: sd.mapperName, mountpoint: sd.mountpoint });
  const formatted = r.steps.includes('formatted') || r.steps.includes('reformatted-unfinished');
  const state = formatted ? 'formatted' : sd.deviceMapper ? 'opened' : 'verified';
  const base = { state, found: r.found, steps: r.steps, luksUuid: r.luksUuid, mountpoint: r.mountpoint, bindMounts: [], warnings: [] as string[] } as const;
  if (!sd.deviceMapper) {
    return { ...base, warnings: [], bindMounts: [], path: i.path, marker: 'skipped (no device-mapper)', summary: `${state}, marker skipped (no device-mapper: not opened)` };
  }

  let path_ = i.path;
  const warnings: string[] = [];
  let marker: DiskStepResult['marker'];
  let content = await readMarker(sd.mountpoint);
  if (content === undefined) {
    content = { v: 1, clusterId: i.clusterId, diskUuid: i.diskUuid, initializedAt: i.clock.now().toISOString() };
    await writeMarker(sd.mountpoint, content);
    marker = formatted ? 'written' : 'written (was missing)';
    // Our header but no marker: the first boot stopped between mkfs and the marker, before any join.
    if (path_ === 'rejoin') {
      path_ = 'join';
      warnings.push('the state disk had no marker: its first boot never finished; joining');
    }
  } else {
    if (content.clusterId !== i.clusterId) {
      await i.disk.close(sd.mapperName, sd.mountpoint);
      fail('STATE_DISK_CLUSTER_MISMATCH', `the state disk ${i.device} belongs to cluster ${content.clusterId} (marker from ${content.initializedAt}), not ${i.clusterId}; closed it again, nothing was changed`);
    }
    if (content.diskUuid !== i.diskUuid) warnings.push(`the marker names disk ${content.diskUuid}, this partition is ${i.diskUuid} (a copied disk?)`);
    marker = 'present';
    if (path_ === 'rejoin' && content.joinedAt === undefined) {
      path_ = 'join';
      warnings.push('the marker records no finished join: running kubeadm join again');
    }
  }

  const bindMounts: DiskStepResult['bindMounts'] = [];
  for (const b of sd.bindMounts) {
    const source = path.join(sd.mountpoint, b.source);
    await mkdir(source, { recursive: true, mode: 0o700 });
    await mkdir(b.target, { recursive: true, mode: 0o700 });
    bindMounts.push({ target: b.target, result: await i.disk.bindMount(source, b.target) });
  }
  return { ...base, bindMounts, path: path_, marker, markerContent: content, warnings, summary: `${state}, marker ${marker}` };
}

/** After kubeadm join: record it in the marker, so a reboot takes the rejoin path. */
export async function recordJoined(mountpoint: string, now: Date): Promise<boolean> {
  const m = await readMarker(mountpoint);
  if (!m) return false;
  if (m.joinedAt === undefined) await writeMarker(mountpoint, { ...m, joinedAt: now.toISOString() });
  return true;
}
