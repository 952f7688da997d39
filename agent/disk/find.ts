import { fail } from '../../lib/errors.js';
import type { ExecLogger } from '../../lib/exec.js';
import type { Runner } from './runner.js';

/** One row of `lsblk -J -b -l` (flat list), the fields the selection reads. */
export interface BlockDeviceRow {
  name: string;
  path: string;
  type: string;
  size: number;
  partlabel: string | null;
  parttype: string | null;
  partuuid: string | null;
  fstype: string | null;
  pkname: string | null;
  ro: boolean;
}

export const LSBLK_COLUMNS = 'NAME,PATH,TYPE,SIZE,PARTLABEL,PARTTYPE,PARTUUID,FSTYPE,PKNAME,RO';

export function parseLsblk(text: string): BlockDeviceRow[] {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (cause) {
    fail('DISK_STEP_FAILED', 'lsblk printed something that is not JSON', cause);
  }
  const rows = (j as { blockdevices?: unknown }).blockdevices;
  if (!Array.isArray(rows)) fail('DISK_STEP_FAILED', 'lsblk JSON has no blockdevices list');
  return rows.map((r: Record<string, unknown>) => ({
    name: String(r.name),
    path: String(r.path ?? `/dev/${String(r.name)}`),
    type: String(r.type),
    size: Number(r.size),
    partlabel: typeof r.partlabel === 'string' ? r.partlabel : null,
    parttype: typeof r.parttype === 'string' ? r.parttype.toLowerCase() : null,
    partuuid: typeof r.partuuid === 'string' ? r.partuuid.toLowerCase() : null,
    fstype: typeof r.fstype === 'string' ? r.fstype : null,
    pkname: typeof r.pkname === 'string' ? r.pkname : null,
    ro: r.ro === true || r.ro === '1' || r.ro === 1,
  }));
}

export async function readBlockInventory(runner: Runner, log?: ExecLogger): Promise<BlockDeviceRow[]> {
  return parseLsblk((await runner('lsblk', ['-J', '-b', '-l', '-o', LSBLK_COLUMNS], { log })).stdout);
}

export interface StateDiskSelector {
  /** GPT partition name (PARTLABEL); default `sextant-state`. */
  partLabel?: string;
  /** GPT partition type GUID; when both are set a partition must match both. */
  partType?: string;
}

/**
 * The state disk is the one GPT partition whose label (and type, if configured) matches:
 * never a guessed device name (vdb on one cloud is nvme1n1 on the next, and guessing wrong
 * formats someone's disk). No match: DISK_NOT_FOUND; several: DISK_AMBIGUOUS (refuse to pick).
 */
export function selectStateDisk(rows: readonly BlockDeviceRow[], sel: StateDiskSelector): BlockDeviceRow {
  const label = sel.partLabel ?? 'sextant-state';
  const type = sel.partType?.toLowerCase();
  const matches = rows.filter((r) => r.type === 'part' && r.partlabel === label && (type === undefined || r.parttype === type));
  const want = `a GPT partition labelled ${JSON.stringify(label)}${type ? ` of type ${type}` : ''}`;
  if (matches.length === 0) fail('DISK_NOT_FOUND', `no ${want} among ${rows.length} block devices`);
  if (matches.length > 1) fail('DISK_AMBIGUOUS', `${matches.length} partitions match ${want}: ${matches.map((m) => m.path).join(', ')}; refusing to pick one`);
  const m = matches[0];
  if (m.ro) fail('DISK_STEP_FAILED', `${m.path} is read-only`);
  return m;
}
