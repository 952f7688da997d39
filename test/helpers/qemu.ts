import { execa } from 'execa';
import { access, copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasTool, run } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { hash, toHex, type HashAlg } from '../../lib/bytes.js';
import { CAPTURE_DONE_MARKER, RESULTS_DISK_SERIAL } from './boot/capture-initrd.js';
import { buildEspDisk } from './boot/esp-disk.js';

import { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS } from '../../mini/machine.js';

export { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS };

/** Host tools a measured boot needs; a missing one is a loud TOOL_MISSING, never a skip. */
const BOOT_TOOLS = ['qemu-system-x86_64', 'swtpm', 'sgdisk', 'mkfs.vfat', 'mmd', 'mcopy', 'tar', 'objcopy'];

export async function assertBootToolsPresent(): Promise<void> {
  const missing: string[] = [];
  for (const t of BOOT_TOOLS) if (!(await hasTool(t))) missing.push(t);
  for (const f of [OVMF_CODE, OVMF_VARS]) {
    try {
      await access(f);
    } catch {
      missing.push(f);
    }
  }
  if (missing.length > 0) {
    throw new SextantError({
      code: 'TOOL_MISSING',
      message: `a measured boot needs ${missing.join(', ')} (Debian: qemu-system-x86 ovmf swtpm gdisk dosfstools mtools tar binutils)`,
    });
  }
}

export interface BootCaptureOptions {
  /** The EFI binary firmware boots (installed as EFI/BOOT/BOOTX64.EFI on a fresh ESP). */
  efiBinary: string;
  /** Kill the VM after this long (TCG on a busy 2-core host: a small UKI takes 20-45 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Keep the work directory (disk, serial log) for debugging. */
  keepWorkDir?: boolean;
  /**
   * Secure Boot on: OVMF's secure-boot build with SMM, started from this variable store (a
   * copy: the file stays as it is), e.g. one `sextant image sb-vars` wrote.
   */
  secureBootVars?: string;
  /**
   * Stop the VM as soon as the serial console shows this (e.g. the firmware refusing the
   * binary): bootAndCapture then rejects with a BootStoppedError carrying the serial log.
   */
  stopOnSerial?: RegExp;
}

/** The boot was stopped on purpose because the serial console showed `stopOnSerial`. */
export class BootStoppedError extends Error {
  constructor(readonly serialLog: string) {
    super('the boot was stopped: the serial console showed the expected text');
  }
}

export interface BootCapture {
  /** PCR 0-23 of every bank the guest's TPM exposes, read by the guest kernel after boot. */
  pcrs: PcrBanks;
  /** /sys/kernel/security/tpm0/binary_bios_measurements, as read in the guest. */
  eventlog: Buffer;
  /** /proc/cmdline and `uname -r` in the guest. */
  cmdline: string;
  kernelRelease: string;
  /** `ls -lnR /.extra` in the guest: what the stub added to the initrd (empty for a 252 stub). */
  extraListing: string;
  serialLog: string;
  /** qemu start to qemu exit. */
  bootSeconds: number;
}

/**
 * One measured boot: fresh swtpm state, fresh OVMF variables, a fresh ESP disk holding the
 * binary, and a blank results disk the capture initrd writes a tar to. qemu and swtpm are
 * stopped by PID on every path.
 */
export async function bootAndCapture(opts: BootCaptureOptions): Promise<BootCapture> {
  await assertBootToolsPresent();
  const log = opts.log;
  const work = await mkdtemp(path.join(os.tmpdir(), 'sextant-boot-'));
  const tpmDir = path.join(work, 'tpm');
  const serialPath = path.join(work, 'serial.log');
  let swtpmPid: number | undefined;
  let qemuPid: number | undefined;
  try {
    await mkdir(tpmDir);
    const bootImg = path.join(work, 'boot.img');
    const resultsImg = path.join(work, 'results.img');
    const varsImg = path.join(work, 'OVMF_VARS.fd');
    await buildEspDisk(opts.efiBinary, bootImg, log);
    await writeFile(resultsImg, '');
    await truncate(resultsImg, 16 * 1024 * 1024);
    await copyFile(opts.secureBootVars ?? OVMF_VARS, varsImg);
    const code = opts.secureBootVars ? OVMF_CODE_SECBOOT : OVMF_CODE;

    const sock = path.join(tpmDir, 'sock');
    const pidFile = path.join(tpmDir, 'pid');
    await run(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${tpmDir}`, '--ctrl', `type=unixio,path=${sock}`, '--flags', 'startup-clear', '--pid', `file=${pidFile}`, '--daemon'],
      { log, timeoutMs: 30_000 },
    );
    swtpmPid = Number((await readFile(pidFile, 'utf8')).trim());
    log?.(`swtpm pid ${swtpmPid}`);

    const args = [
      '-machine', opts.secureBootVars ? 'q35,smm=on' : 'q35,smm=off', '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '1',
      ...(opts.secureBootVars ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${varsImg}`,
      '-chardev', `socket,id=chrtpm,path=${sock}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-crb,tpmdev=tpm0',
      '-drive', `if=none,id=boot,format=raw,file=${bootImg}`, '-device', 'virtio-blk-pci,drive=boot,bootindex=0',
      '-drive', `if=none,id=results,format=raw,file=${resultsImg}`, '-device', `virtio-blk-pci,drive=results,serial=${RESULTS_DISK_SERIAL}`,
      '-nic', 'none', '-nographic', '-serial', `file:${serialPath}`, '-monitor', 'none', '-no-reboot',
    ];
    log?.(`+ qemu-system-x86_64 ${args.join(' ')}`);
    const started = process.hrtime.bigint();
    const child = execa('qemu-system-x86_64', args, { reject: false, stdin: 'ignore', encoding: 'utf8' });
    qemuPid = child.pid;
    log?.(`qemu pid ${qemuPid}`);
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const timer = setTimeout(() => {
      if (qemuPid !== undefined) killQuietly(qemuPid, 'SIGKILL');
    }, timeoutMs);
    let stoppedOnSerial = false;
    const watcher = opts.stopOnSerial
      ? setInterval(() => {
          void readFile(serialPath, 'utf8').then(
            (text) => {
              if (opts.stopOnSerial!.test(text) && qemuPid !== undefined) {
                stoppedOnSerial = true;
                killQuietly(qemuPid, 'SIGKILL');
              }
            },
            () => undefined,
          );
        }, 500)
      : undefined;
    const r = await child.finally(() => {
      clearTimeout(timer);
      if (watcher) clearInterval(watcher);
    });
    qemuPid = undefined;
    if (stoppedOnSerial) throw new BootStoppedError(await readFile(serialPath, 'utf8').catch(() => ''));
    const bootSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const serialLog = await readFile(serialPath, 'utf8').catch(() => '');
    if (!serialLog.includes(CAPTURE_DONE_MARKER)) {
      const why = r.signal === 'SIGKILL' ? `timed out after ${timeoutMs} ms` : `qemu exited with ${r.exitCode}: ${String(r.stderr).trim().slice(-400)}`;
      throw new SextantError({
        code: r.signal === 'SIGKILL' ? 'TIMEOUT' : 'EXEC_FAILED',
        message: `measured boot of ${opts.efiBinary} did not finish its capture (${why}); serial log tail:\n${tail(serialLog, 25)}`,
      });
    }
    log?.(`boot finished in ${bootSeconds.toFixed(1)} s`);

    const outDir = path.join(work, 'results');
    await mkdir(outDir);
    await run('tar', ['-xf', resultsImg, '-C', outDir], { log });
    const eventlog = await readFile(path.join(outDir, 'eventlog.bin'));
    // The guest printed the log's hash on the serial console: the disk copy must be the same bytes.
    const printed = /([0-9a-f]{64})  \/out\/eventlog\.bin/.exec(serialLog)?.[1];
    if (printed !== toHex(hash('sha256', eventlog))) {
      throw new SextantError({ code: 'IO_FAILED', message: `event log read from the results disk does not match the guest's sha256 (${printed ?? 'none printed'})` });
    }
    return {
      pcrs: parsePcrLines(await readFile(path.join(outDir, 'pcrs.txt'), 'utf8')),
      eventlog,
      extraListing: await readFile(path.join(outDir, 'extra.txt'), 'utf8'),
      cmdline: (await readFile(path.join(outDir, 'cmdline.txt'), 'utf8')).trim(),
      kernelRelease: (await readFile(path.join(outDir, 'uname.txt'), 'utf8')).trim(),
      serialLog,
      bootSeconds,
    };
  } finally {
    if (qemuPid !== undefined) killQuietly(qemuPid, 'SIGKILL');
    if (swtpmPid !== undefined) await stopSwtpm(swtpmPid);
    if (opts.keepWorkDir) log?.(`work directory kept: ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

/** True while a process with this PID exists (signal 0 only checks). */
export function processAlive(pid: number): boolean {
  return killQuietly(pid, 0);
}

async function stopSwtpm(pid: number): Promise<void> {
  if (!killQuietly(pid, 'SIGTERM')) return;
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    if (!processAlive(pid)) return;
  }
  killQuietly(pid, 'SIGKILL');
}

/** Lines `sha256 4 ABCD...` (bank, index, value as sysfs prints it) into PcrBanks. */
export function parsePcrLines(text: string): PcrBanks {
  const banks: PcrBanks = {};
  for (const line of text.split('\n')) {
    const m = /^(sha1|sha256|sha384|sha512) (\d+) ([0-9A-Fa-f]+)$/.exec(line.trim());
    if (!m) continue;
    const bank = m[1] as HashAlg;
    (banks[bank] ??= {})[m[2]] = m[3].toLowerCase();
  }
  return banks;
}

export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

