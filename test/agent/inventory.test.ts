import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { gatherInventory } from '../../agent/attest/inventory.js';

test("the inventory's disks are this host's whole disks with the sizes sysfs gives (512-byte sectors), bounded", async (t) => {
  const inv = await gatherInventory();
  const disks = inv.disks ?? [];
  t.true(disks.length <= 64);
  // Oracle: /sys/block/<dev>/size, for the devices lsblk calls disks (no RAM or loop devices).
  const sizes = new Set<number>();
  for (const d of await readdir('/sys/block')) {
    if (/^(zram|ram|loop)/.test(d)) continue;
    sizes.add(Number((await readFile(`/sys/block/${d}/size`, 'utf8')).trim()) * 512);
  }
  for (const d of disks) {
    t.true(sizes.has(d.size), `${d.name}: ${d.size}`);
    t.true(d.name.length > 0 && d.name.length <= 256);
    t.true(d.serial === undefined || d.serial.length <= 256);
  }
  t.true(disks.length > 0, 'this host has at least one disk');
  for (const k of ['vendor', 'model', 'serial'] as const) t.true(inv[k] === undefined || (inv[k]!.length > 0 && inv[k]!.length <= 256), k);
});
