/**
 * Booting a node machine: a swtpm process on its TPM state, then qemu-system-x86_64 with OVMF,
 * tpm-crb, the boot and state disks, user-mode networking restricted to the relayed key
 * service, and the agent's configuration as an SMBIOS systemd credential. Both processes run
 * in their own sessions and outlive the caller (a mini cluster keeps running after
 * `sextant mini up` returns); `bootNode` is the attached form the e2e boots use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { createConnection } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SextantError } from '../lib/errors.js';
import { GUEST_KEYSERVICE_ADDR, GUEST_KEYSERVICE_PORT, GUEST_KEYSERVICE_URL } from './keyservice.js';
import { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS, STATE_PART_LABEL, type NodeMachine } from './machine.js';
import { TCP_RELAY } from './paths.js';
import { isSameProcess, recordProcess, stopProcess, type ProcessRecord } from './proc.js';
import { SerialTail, type ConsoleLine } from './serial.js';
import { startSwtpmForVm, type Log } from './swtpm.js';

/**
 * kvm: hardware virtualization. tcg: QEMU's multi-threaded emulation (one host thread per
 * vCPU). tcg-single: one host thread for all vCPUs: a guest kernel 6.12 with 2 vCPUs under
 * multi-threaded TCG sometimes oopsed in sched_clock_cpu (shared notes), and two nodes booting
 * at once on 2 cores gain nothing from more threads.
 */
export type Accel = 'kvm' | 'tcg' | 'tcg-single';

/**
 * True when KVM runs a guest here: /dev/kvm opens read-write, and OVMF under `-accel kvm -cpu
 * host` reaches its boot manager (it prints "BdsDxe" on the serial console within seconds).
 * Opening is not enough: nested or restricted hosts have a /dev/kvm whose vCPUs fail at once
 * ("failed to set MSR", "KVM internal error"; seen on this project's build machines).
 */
export async function kvmUsable(timeoutMs = 15_000): Promise<boolean> {
  const fh = await open('/dev/kvm', 'r+').catch(() => undefined);
  if (!fh) return false;
  await fh.close();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-kvm-probe-'));
  try {
    const vars = path.join(dir, 'vars.fd');
    await copyFile(OVMF_VARS, vars);
    const serial = path.join(dir, 'serial.log');
    const child = spawn('qemu-system-x86_64', ['-machine', 'q35,smm=off', '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-display', 'none', '-serial', `file:${serial}`, '-monitor', 'none', '-no-reboot'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exited = false;
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    let ok = false;
    while (Date.now() < deadline && !exited && !/error/i.test(stderr)) {
      if ((await readFile(serial, 'latin1').catch(() => '')).includes('BdsDxe')) {
        ok = true;
        break;
      }
      await sleep(200);
    }
    child.kill('SIGKILL');
    if (!exited) await new Promise((r) => child.once('exit', r));
    return ok;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface QemuArgsOptions {
  machine: NodeMachine;
  bootDisk: string;
  swtpmSocket: string;
  qmpSocket: string;
  serialLog: string;
  keyServicePort: number;
  agentConfig: unknown;
  credentials?: Record<string, string>;
  memoryMiB: number;
  cpus: number;
  accel?: Accel;
  /** qemu writes its PID here (the record a later command finds it by). */
  pidFile?: string;
}

function accelArgs(accel: Accel): string[] {
  switch (accel) {
    case 'kvm':
      return ['-accel', 'kvm', '-cpu', 'host'];
    case 'tcg':
      return ['-accel', 'tcg', '-cpu', 'max'];
    case 'tcg-single':
      return ['-accel', 'tcg,thread=single', '-cpu', 'max'];
  }
}

export function qemuArgs(o: QemuArgsOptions): string[] {
  const bootFormat = o.bootDisk.endsWith('.qcow2') ? 'qcow2' : 'raw';
  const relay = `${process.execPath} --no-warnings ${TCP_RELAY} 127.0.0.1 ${o.keyServicePort}`;
  const credential = Buffer.from(JSON.stringify(o.agentConfig)).toString('base64');
  const sb = o.machine.secureBoot === true;
  const netdev = `user,id=net0,restrict=on,guestfwd=tcp:${GUEST_KEYSERVICE_ADDR}:${GUEST_KEYSERVICE_PORT}-cmd:${relay}`;
  return [
    '-machine', sb ? 'q35,smm=on' : 'q35,smm=off', ...accelArgs(o.accel ?? 'tcg'), '-m', String(o.memoryMiB), '-smp', String(o.cpus),
    ...(sb ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${sb ? OVMF_CODE_SECBOOT : OVMF_CODE}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${o.machine.vars}`,
    '-chardev', `socket,id=chrtpm,path=${o.swtpmSocket}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-crb,tpmdev=tpm0',
    '-drive', `if=none,id=boot,format=${bootFormat},file=${o.bootDisk}`, '-device', 'virtio-blk-pci,drive=boot,bootindex=0',
    '-drive', `if=none,id=state,format=raw,file=${o.machine.stateDisk}`, '-device', 'virtio-blk-pci,drive=state,serial=sextant-state',
    // User-mode networking only; restrict=on: the guest reaches nothing but the relayed key service.
    // With Secure Boot on the NIC has no option ROM: an unsigned ROM is refused by the firmware,
    // and a ROM's authority would be one more PCR 7 event than the prediction assumes.
    ...(sb
      ? ['-netdev', netdev, '-device', 'virtio-net-pci,netdev=net0,romfile=']
      : ['-nic', `user,model=virtio-net-pci,restrict=on,guestfwd=tcp:${GUEST_KEYSERVICE_ADDR}:${GUEST_KEYSERVICE_PORT}-cmd:${relay}`]),
    '-smbios', `type=11,value=io.systemd.credential.binary:sextant.agent.json=${credential}`,
    ...Object.entries(o.credentials ?? {}).flatMap(([name, value]) => ['-smbios', `type=11,value=io.systemd.credential.binary:${name}=${Buffer.from(value).toString('base64')}`]),
    '-display', 'none', '-serial', `file:${o.serialLog}`, '-monitor', 'none', '-qmp', `unix:${o.qmpSocket},server=on,wait=off`, '-no-reboot',
    ...(o.pidFile ? ['-pidfile', o.pidFile] : []),
  ];
}

/** The agent configuration a node gets (systemd credential sextant.agent.json). */
export function agentConfigFor(fingerprint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    keyservice: { url: GUEST_KEYSERVICE_URL, fingerprint },
    tpm: { tcti: 'device:/dev/tpmrm0' },
    stateDisk: { partLabel: STATE_PART_LABEL },
    ...extra,
  };
}

export interface LaunchOptions {
  machine: NodeMachine;
  /** Boot this disk instead of the machine's (e.g. a tampered copy). qcow2 or raw by extension. */
  bootDisk?: string;
  /** Host loopback port the guest's connections to GUEST_KEYSERVICE_URL are relayed to. */
  keyServicePort: number;
  /** JSON handed to the guest as the systemd credential sextant.agent.json (SMBIOS type 11). */
  agentConfig: unknown;
  serialLog: string;
  /** More systemd credentials by name (SMBIOS type 11). */
  credentials?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  accel?: Accel;
  log?: Log;
}

/** A booting node's processes. */
export interface LaunchedNode {
  qemu: ProcessRecord;
  swtpm: ProcessRecord;
  qmpSocket: string;
  /** qemu's own stdout/stderr. */
  qemuLog: string;
  /** process.hrtime.bigint() at qemu's start. */
  t0: bigint;
  startedAt: string;
  /** Resolves when qemu exits (only while this process is its parent). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Lets this process exit while the node runs on. */
  detach(): void;
  /** qemu, then swtpm, each by PID after checking it is still the process started. */
  stop(): Promise<void>;
}

/** Starts swtpm and qemu (at nice 10) for one boot; the console goes to `serialLog`. */
export async function launchNode(o: LaunchOptions): Promise<LaunchedNode> {
  const runDir = path.join(o.machine.dir, 'run');
  await mkdir(runDir, { recursive: true });
  await writeFile(o.serialLog, '');
  const qmpSocket = path.join(runDir, 'qmp.sock');
  const pidFile = path.join(runDir, 'qemu.pid');
  await rm(pidFile, { force: true });
  const vm = await startSwtpmForVm(o.machine.tpm.stateDir, runDir, o.log);
  const swtpm = recordProcess(vm.pid, o.machine.tpm.stateDir);
  const args = qemuArgs({ ...o, bootDisk: o.bootDisk ?? o.machine.bootDisk, swtpmSocket: vm.socket, qmpSocket, pidFile, memoryMiB: o.memoryMiB ?? 2048, cpus: o.cpus ?? 2 });
  o.log?.(`+ nice -n 10 qemu-system-x86_64 ${args.map((a) => (a.startsWith('type=11') ? 'type=11,value=io.systemd.credential.binary:sextant.agent.json=<base64>' : a)).join(' ')}`);
  const qemuLog = path.join(runDir, 'qemu.log');
  const logFh = await open(qemuLog, 'w');
  let child: ChildProcess;
  const t0 = process.hrtime.bigint();
  try {
    child = spawn('nice', ['-n', '10', 'qemu-system-x86_64', ...args], { detached: true, stdio: ['ignore', logFh.fd, logFh.fd] });
  } finally {
    await logFh.close();
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  if (child.pid === undefined) {
    await vm.stop();
    throw new SextantError({ code: 'TOOL_MISSING', message: 'could not start nice -n 10 qemu-system-x86_64' });
  }
  // The serial log path is on qemu's command line and unique to this machine: its identity.
  const qemu = recordProcess(child.pid, o.serialLog);
  const stop = async (): Promise<void> => {
    await stopProcess(qemu, 2000);
    await stopProcess(swtpm);
  };
  return { qemu, swtpm, qmpSocket, qemuLog, t0, startedAt: new Date().toISOString(), exited, detach: () => child.unref(), stop };
}

/** ACPI power button through QMP, so the guest shuts down cleanly (its disks are synced). */
export async function qmpPowerdown(socket: string): Promise<void> {
  if (!existsSync(socket)) return;
  await new Promise<void>((resolve) => {
    const c = createConnection(socket);
    const done = () => {
      c.destroy();
      resolve();
    };
    c.on('error', done);
    c.setTimeout(5000, done);
    let sent = false;
    c.on('data', () => {
      if (sent) return done();
      sent = true;
      c.write('{"execute":"qmp_capabilities"}\n{"execute":"system_powerdown"}\n');
      setTimeout(done, 500);
    });
  });
}

/**
 * Powers a node off: the ACPI power button, then (after `graceMs`, default 45 s: a clean
 * shutdown under TCG takes a while) qemu is killed, which the agent must survive anyway (it
 * fsyncs what it writes). swtpm is stopped after qemu.
 */
export async function powerOff(n: Pick<LaunchedNode, 'qemu' | 'swtpm' | 'qmpSocket'>, o: { graceMs?: number; onTick?: () => Promise<void>; log?: Log } = {}): Promise<void> {
  if (isSameProcess(n.qemu)) {
    await qmpPowerdown(n.qmpSocket);
    const deadline = Date.now() + (o.graceMs ?? 45_000);
    while (isSameProcess(n.qemu) && Date.now() < deadline) {
      await sleep(250);
      await o.onTick?.();
    }
    if (isSameProcess(n.qemu)) o.log?.(`guest did not power off within ${((o.graceMs ?? 45_000) / 1000).toFixed(0)} s: killing qemu`);
    await stopProcess(n.qemu, 2000);
  }
  await stopProcess(n.swtpm);
}

export interface BootOptions extends LaunchOptions {
  /** Hard limit: qemu is killed after this long. */
  timeoutMs: number;
  /** Returns true once the boot has shown what the caller waits for; then the VM is powered off. */
  until: (lines: readonly ConsoleLine[]) => boolean | Promise<boolean>;
  /** Called for each console line as it arrives (e.g. to start the key service late). */
  onLine?: (line: ConsoleLine, all: readonly ConsoleLine[]) => void;
  /** Told each process started (so a test process can kill them if it exits without its hooks). */
  onLaunched?: (n: LaunchedNode) => void;
}

export interface BootResult {
  lines: ConsoleLine[];
  /** qemu start to qemu exit. */
  seconds: number;
  /** until: the awaited state was seen; exited: the guest stopped on its own; timeout: killed. */
  reason: 'until' | 'exited' | 'timeout';
  /** Seconds from qemu start until `until` held. */
  untilSeconds?: number;
  qemuStderr: string;
}

/** Boots the machine once and waits: powers off once `until` holds, kills at `timeoutMs`. */
export async function bootNode(o: BootOptions): Promise<BootResult> {
  const log = o.log;
  const n = await launchNode(o);
  o.onLaunched?.(n);
  try {
    let exited = false;
    void n.exited.then(() => (exited = true));
    const tail = new SerialTail(o.serialLog, n.t0);
    const poll = async (): Promise<void> => {
      for (const l of await tail.poll()) o.onLine?.(l, tail.lines);
    };
    const elapsed = () => Number(process.hrtime.bigint() - n.t0) / 1e9;
    let reason: BootResult['reason'] = 'exited';
    let untilSeconds: number | undefined;
    while (!exited) {
      await sleep(250);
      await poll();
      if (untilSeconds === undefined && (await o.until(tail.lines))) {
        untilSeconds = elapsed();
        reason = 'until';
        log?.(`awaited state reached after ${untilSeconds.toFixed(1)} s: powering off`);
        await powerOff(n, { onTick: poll, log });
        break;
      }
      if (elapsed() * 1000 > o.timeoutMs) {
        reason = 'timeout';
        log?.(`boot timed out after ${(o.timeoutMs / 1000).toFixed(0)} s: killing qemu`);
        await stopProcess(n.qemu, 0);
        break;
      }
    }
    await n.exited;
    const seconds = elapsed();
    await poll();
    return { lines: tail.lines, seconds, reason, untilSeconds, qemuStderr: await readFile(n.qemuLog, 'utf8').catch(() => '') };
  } finally {
    await n.stop();
  }
}

export const MULTI_USER = /Reached target .*Multi-User System/;
export const AGENT_FAILED = /Failed to start .*(sextant-agent|sextant boot agent)/;
/** The kernel's audit line for each failed start of the unit (systemd restarts it without a status line). */
export const AGENT_START_FAILED = /unit=sextant-agent .*res=failed/;

/** The agent unit failed this many times: it is crash-looping (Restart=on-failure), stop waiting. */
export function agentCrashLooping(lines: readonly ConsoleLine[], times = 3): boolean {
  return lines.filter((l) => AGENT_START_FAILED.test(l.text)).length >= times;
}

/** Default end of a boot: multi-user reached (after the agent became ready), the agent unit failed, or it keeps failing. */
export function bootSettled(lines: readonly ConsoleLine[]): boolean {
  return lines.some((l) => MULTI_USER.test(l.text) || AGENT_FAILED.test(l.text)) || agentCrashLooping(lines);
}
