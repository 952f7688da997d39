import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { newcArchive, type CpioEntry } from './cpio.js';

/** The serial line the capture init prints last; its absence means the capture failed. */
export const CAPTURE_DONE_MARKER = 'SEXTANT-CAPTURE-DONE';
/** virtio-blk serial of the spare disk the guest writes its results to (as a tar). */
export const RESULTS_DISK_SERIAL = 'sextant-results';

/** Modules virtio_blk needs on Debian's 6.1 kernel, in load order (TPM CRB/TIS are built in). */
const VIRTIO_BLK_MODULES = [
  'kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
  'kernel/drivers/virtio/virtio_pci.ko',
  'kernel/drivers/block/virtio_blk.ko',
];

/**
 * The guest's /init: reads every PCR of every bank and the firmware event log (in one read:
 * partial reads of binary_bios_measurements corrupt it), writes them as a tar onto the raw
 * results disk, and powers off. It prints progress on the serial console for diagnosis.
 */
export function captureInitScript(modules: readonly string[]): string {
  return `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
echo 1 > /proc/sys/kernel/printk
echo "sextant-capture: init started"
${modules.map((m) => `insmod /lib/modules/${path.basename(m)}`).join('\n')}
n=0
while [ ! -e /sys/class/tpm/tpm0 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
[ -e /sys/class/tpm/tpm0 ] || echo "sextant-capture: ERROR no tpm0"
mkdir -p /out
for dir in /sys/class/tpm/tpm0/pcr-*; do
  bank=\${dir##*/pcr-}
  i=0
  while [ $i -le 23 ]; do echo "$bank $i $(cat $dir/$i)" >> /out/pcrs.txt; i=$((i+1)); done
done
cat /sys/kernel/security/tpm0/binary_bios_measurements > /out/eventlog.bin
cat /proc/cmdline > /out/cmdline.txt
uname -r > /out/uname.txt
# what a systemd >= 254 stub added to the initrd (its generated cpios land under /.extra)
ls -lnR /.extra > /out/extra.txt 2>&1
grep '^sha256 ' /out/pcrs.txt
sha256sum /out/eventlog.bin
disk=""
n=0
while [ -z "$disk" ] && [ $n -lt 300 ]; do
  for s in /sys/block/vd*/serial; do
    [ -e "$s" ] && [ "$(cat $s)" = "${RESULTS_DISK_SERIAL}" ] && disk=/dev/$(basename $(dirname $s))
  done
  [ -n "$disk" ] || { sleep 0.1; n=$((n+1)); }
done
if [ -n "$disk" ]; then
  tar -cf "$disk" -C /out .
  sync
  echo "${CAPTURE_DONE_MARKER}"
else
  echo "sextant-capture: ERROR results disk not found"
fi
poweroff -f
`;
}

export interface CaptureInitrdInputs {
  /** busybox-static binary (Debian: /bin/busybox from busybox-static). */
  busybox?: string;
  /** Kernel release whose modules go in (must match the kernel in the UKI). */
  kernelRelease: string;
}

/** Builds the tiny capture initrd (busybox, virtio_blk modules, /init): a few MB, bit-reproducible. */
export async function buildCaptureInitrd(inputs: CaptureInitrdInputs): Promise<Buffer> {
  const modDir = path.join('/lib/modules', inputs.kernelRelease);
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'dir', path: 'dev' },
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: 'lib/modules' },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: await readFile(inputs.busybox ?? '/bin/busybox'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: Buffer.from(captureInitScript(VIRTIO_BLK_MODULES)), mode: 0o755 },
  ];
  for (const m of VIRTIO_BLK_MODULES) {
    entries.push({ kind: 'file', path: `lib/modules/${path.basename(m)}`, data: await readFile(path.join(modDir, m)) });
  }
  return newcArchive(entries);
}
