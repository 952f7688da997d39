import { readFile } from 'node:fs/promises';
import { run } from '../../lib/exec.js';
import type { Inventory } from '../../protocol/messages.js';

/**
 * Non-secret facts about the machine for the audit log; best effort, never fails attestation.
 * Read directly (SMBIOS strings from sysfs, disks from lsblk) rather than through
 * systeminformation, whose import alone cost the agent ~10 MiB of its 60 MiB budget.
 */
export async function gatherInventory(): Promise<Inventory> {
  const [vendor, model, serial, disks] = await Promise.all([dmi('sys_vendor'), dmi('product_name'), dmi('product_serial'), physicalDisks()]);
  return { vendor, model, serial, disks };
}

const short = (s: string | null | undefined): string | undefined => (s?.trim() ? s.trim().slice(0, 256) : undefined);

/** One SMBIOS string (product_serial is root-only: absent for other users). */
async function dmi(name: string): Promise<string | undefined> {
  return readFile(`/sys/class/dmi/id/${name}`, 'utf8').then(short, () => undefined);
}

interface LsblkDisk {
  name: string;
  model?: string | null;
  size?: number | string | null;
  serial?: string | null;
  type?: string;
}

/** Whole disks with a size, as lsblk lists them (RAM-backed and loop devices left out). */
async function physicalDisks(): Promise<NonNullable<Inventory['disks']>> {
  try {
    const r = await run('lsblk', ['-d', '-b', '-J', '-o', 'NAME,MODEL,SIZE,SERIAL,TYPE'], { timeoutMs: 5000 });
    const devices = (JSON.parse(r.stdout) as { blockdevices?: LsblkDisk[] }).blockdevices ?? [];
    return devices
      .filter((d) => d.type === 'disk' && Number(d.size) > 0 && !/^(zram|ram|loop)/.test(d.name))
      .slice(0, 64)
      .map((d) => ({ name: short(d.model) ?? `/dev/${d.name}`.slice(0, 256), size: Number(d.size), serial: short(d.serial) }));
  } catch {
    return [];
  }
}
