import si from 'systeminformation';
import type { Inventory } from '../../protocol/messages.js';

/** Non-secret facts about the machine for the audit log; best effort, never fails attestation. */
export async function gatherInventory(): Promise<Inventory> {
  try {
    const [system, disks] = await Promise.all([si.system(), si.diskLayout()]);
    const short = (s: string | undefined) => (s ? s.slice(0, 256) : undefined);
    return {
      vendor: short(system.manufacturer),
      model: short(system.model),
      serial: short(system.serial),
      disks: disks.slice(0, 64).map((d) => ({ name: d.name.slice(0, 256) || d.device.slice(0, 256), size: d.size, serial: short(d.serialNum) })),
    };
  } catch {
    return {};
  }
}
