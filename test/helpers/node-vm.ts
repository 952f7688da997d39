/**
 * The end-to-end harness: boots a built node image (sextant image build) the way a cloud
 * would, with real firmware (OVMF), a real TPM 2.0 (swtpm, EK certificate from a test CA), a
 * blank state disk and the key service on the host's loopback, and records the serial console.
 *
 *   const m = await createNodeMachine({ image, dir });            // TPM, firmware vars, disks
 *   const ks = await startKeyServiceProcess({ ... });              // sextant keyservice, by PID
 *   const boot = await bootNode({ machine: m, keyServicePort, agentConfig, until });
 *
 * A machine keeps its TPM state, OVMF variables and disks across boots (a reboot of the same
 * node); every process (swtpm, qemu, key service) is stopped by its PID on every path.
 * scripts/e2e/boot-node.mjs runs the same harness by hand.
 */
import { execa, type ResultPromise } from 'execa';
import { createConnection } from 'node:net';
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasTool, run } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { OVMF_CODE, OVMF_CODE_SECBOOT, OVMF_VARS, processAlive } from './qemu.js';
import { killAndWait, provisionSwtpm, startSwtpmForVm, type ProvisionedTpm } from './swtpm.js';
import { REPO_ROOT, SEXTANT_BIN } from './paths.js';

export type Log = (line: string) => void;

/** Where the guest reaches the key service: a guestfwd address (QEMU refuses one on 10.0.2.2 with restrict=on). */
export const GUEST_KEYSERVICE_ADDR = '10.0.2.100';
export const GUEST_KEYSERVICE_PORT = 8443;
export const GUEST_KEYSERVICE_URL = `https://${GUEST_KEYSERVICE_ADDR}:${GUEST_KEYSERVICE_PORT}`;
export const STATE_PART_LABEL = 'sextant-state';

const VM_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'swtpm', 'swtpm_setup', 'sgdisk', 'openssl', 'mcopy', 'sfdisk'];

/** A missing tool is a loud TOOL_MISSING, never a skip. */
export async function assertVmToolsPresent(): Promise<void> {
  const missing: string[] = [];
  for (const t of VM_TOOLS) if (!(await hasTool(t))) missing.push(t);
  for (const f of [OVMF_CODE, OVMF_VARS]) if (!(await readFile(f).then(() => true, () => false))) missing.push(f);
  if (missing.length) {
    throw new SextantError({
      code: 'TOOL_MISSING',
      message: `the node VM needs ${missing.join(', ')} (Debian: qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools gdisk openssl mtools fdisk)`,
    });
  }
}

/** One test node: its TPM, firmware variables and disks, kept across its boots. */
export interface NodeMachine {
  dir: string;
  tpm: ProvisionedTpm;
  /** OVMF_VARS copy: the node's NVRAM (boot entries OVMF writes on first boot persist). */
  vars: string;
  /** Copy-on-write overlay over the image's raw disk (the built image stays pristine). */
  bootDisk: string;
  /** Raw GPT disk with one partition labelled sextant-state, all zeros inside. */
  stateDisk: string;
  /** Secure Boot on: OVMF's secure-boot build with SMM, `vars` started from an enrolled store. */
  secureBoot?: boolean;
}

export async function createNodeMachine(o: { image: string; dir: string; stateDiskMiB?: number; secureBootVars?: string; log?: Log }): Promise<NodeMachine> {
  await assertVmToolsPresent();
  await mkdir(o.dir, { recursive: true });
  const tpm = await provisionSwtpm(path.join(o.dir, 'tpm'), { pcrBanks: ['sha1', 'sha256'], log: o.log });
  const vars = path.join(o.dir, 'OVMF_VARS.fd');
  await copyFile(o.secureBootVars ?? OVMF_VARS, vars);
  const bootDisk = path.join(o.dir, 'boot.qcow2');
  await createOverlay(o.image, bootDisk, o.log);
  const stateDisk = path.join(o.dir, 'state.img');
  await createStateDisk(stateDisk, o.stateDiskMiB ?? 256, o.log);
  return { dir: o.dir, tpm, vars, bootDisk, stateDisk, secureBoot: o.secureBootVars !== undefined };
}

export async function createOverlay(rawImage: string, overlay: string, log?: Log): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.resolve(rawImage), '-F', 'raw', overlay], { log });
}

/**
 * A blank state disk as a cloud volume would come: a GPT with one partition named
 * sextant-state (fixed GUIDs), nothing inside it (blkid finds no signature: "blank").
 */
export async function createStateDisk(file: string, sizeMiB: number, log?: Log): Promise<void> {
  const fh = await open(file, 'w');
  await fh.truncate(sizeMiB * 1024 * 1024);
  await fh.close();
  // The partition's size must be a multiple of 4096 bytes: the agent formats LUKS2 with
  // 4096-byte sectors, and cryptsetup refuses a device whose size is not aligned to them
  // (sgdisk's 1:0:0 left 522207 512-byte sectors). The backup GPT takes the last 33 sectors.
  const sectors = sizeMiB * 2048;
  const end = 2048 + Math.floor((sectors - 34 - 2048) / 8) * 8 - 1;
  await run(
    'sgdisk',
    ['-o', '-n', `1:2048:${end}`, '-t', '1:8300', '-c', `1:${STATE_PART_LABEL}`, '-U', '5e7a7e00-0000-4000-8000-000000000001', '-u', '1:5e7a7e00-0000-4000-8000-000000000002', file],
    { log },
  );
}

// ---- the key service, as the operator runs it: its own process on host loopback ----

export interface KeyServiceFiles {
  measurements: string;
  measurementsKey: string;
  tlsCert: string;
  tlsKey: string;
  /** --config: the join ticket settings (a throwaway cluster CA; the API server address is never dialled). */
  config: string;
}

/**
 * The image's measurements.json signed with a throwaway key (an image may come without its
 * signer's public key), and a TLS certificate naming the address the guest dials.
 */
export async function keyServiceFiles(imageDir: string, dir: string, o: { measurementsKey?: string; log?: Log } = {}): Promise<KeyServiceFiles> {
  await mkdir(dir, { recursive: true });
  let measurements = path.join(imageDir, 'measurements.json');
  let measurementsKey = o.measurementsKey;
  if (!measurementsKey) {
    const key = path.join(dir, 'measurements-sign.key');
    measurementsKey = path.join(dir, 'measurements-sign.pub');
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], { log: o.log });
    await run('openssl', ['ec', '-in', key, '-pubout', '-out', measurementsKey], { log: o.log });
    const copy = path.join(dir, 'measurements.json');
    await copyFile(measurements, copy);
    const sig = await run('openssl', ['dgst', '-sha256', '-sign', key, copy], { binary: true, log: o.log });
    await writeFile(copy + '.sig', sig.stdoutBytes.toString('base64') + '\n');
    measurements = copy;
  }
  const tlsKey = path.join(dir, 'tls-key.pem');
  const tlsCert = path.join(dir, 'tls-cert.pem');
  await writeFile(tlsKey, '', { mode: 0o600 });
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tlsKey, '-out', tlsCert, '-subj', '/CN=sextant-keyservice',
      '-days', '30', '-addext', `subjectAltName=IP:${GUEST_KEYSERVICE_ADDR},IP:127.0.0.1`],
    { log: o.log },
  );
  const caKey = path.join(dir, 'cluster-ca.key');
  const caCert = path.join(dir, 'cluster-ca.crt');
  await writeFile(caKey, '', { mode: 0o600 });
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    { log: o.log },
  );
  const config = path.join(dir, 'keyservice.json');
  await writeFile(config, JSON.stringify({ nonceTtlSeconds: 300, join: { apiServerEndpoint: '10.0.2.2:6443', caCert, caKey } }, null, 2) + '\n');
  return { measurements, measurementsKey, tlsCert, tlsKey, config };
}

export interface KeyServiceProcess {
  pid: number;
  port: number;
  fingerprint: string;
  clusterId: string;
  stateDir: string;
  auditLog: string;
  stop(): Promise<void>;
}

const children = new Set<number>();
process.once('exit', () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** `sextant keyservice` on 127.0.0.1:port; resolves once it prints its start record. */
export async function startKeyServiceProcess(o: { port: number; stateDir: string; files: KeyServiceFiles; ekCa: string[]; log?: Log }): Promise<KeyServiceProcess> {
  const args = [SEXTANT_BIN, 'keyservice', '--config', o.files.config, '--listen', `127.0.0.1:${o.port}`, '--state-dir', o.stateDir, '--measurements', o.files.measurements,
    '--measurements-key', o.files.measurementsKey, '--tls-cert', o.files.tlsCert, '--tls-key', o.files.tlsKey, '--require-event-log', '--json',
    ...o.ekCa.flatMap((c) => ['--ek-ca', c])];
  o.log?.(`+ node ${args.join(' ')}`);
  const child = execa(process.execPath, args, { reject: false, stdin: 'ignore', buffer: false });
  const pid = child.pid!;
  children.add(pid);
  child.stderr?.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => o.log?.(`keyservice: ${l}`)));
  const started = await new Promise<{ fingerprint: string; clusterId: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new SextantError({ code: 'TIMEOUT', message: 'the key service did not start within 60 s' })), 60_000);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as { fingerprint: string; clusterId: string });
      } catch (e) {
        reject(e);
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new SextantError({ code: 'EXEC_FAILED', message: `the key service exited with ${String(r.exitCode)} before it started` }));
    });
  }).catch(async (e: unknown) => {
    await killAndWait(pid);
    children.delete(pid);
    throw e;
  });
  return {
    pid,
    port: o.port,
    fingerprint: started.fingerprint,
    clusterId: started.clusterId,
    stateDir: o.stateDir,
    auditLog: path.join(o.stateDir, 'audit.log'),
    stop: async () => {
      await killAndWait(pid);
      await child;
      children.delete(pid);
    },
  };
}

export interface AuditRecordLike {
  seq: number;
  time: string;
  decision: string;
  [k: string]: unknown;
}

export async function readAuditLog(file: string): Promise<AuditRecordLike[]> {
  // Evidence (quoted PCRs, event log) resolved from the log's content-addressed records.
  return readAuditRecords(file).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'FILE_NOT_FOUND') return [];
    throw e;
  });
}

/** A loopback port nobody listens on right now (for a key service started later). */
export async function freeLoopbackPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

// ---- one boot ----

/** A console line and when the host saw it (seconds since qemu started). */
export interface ConsoleLine {
  t: number;
  text: string;
}

export interface BootOptions {
  machine: NodeMachine;
  /** Boot this disk instead of the machine's (e.g. a tampered copy). qcow2 or raw by extension. */
  bootDisk?: string;
  /** Host loopback port the guest's connections to GUEST_KEYSERVICE_URL are relayed to. */
  keyServicePort: number;
  /** JSON handed to the guest as the systemd credential sextant.agent.json (SMBIOS type 11). */
  agentConfig: unknown;
  serialLog: string;
  /** Hard limit: qemu is killed after this long. */
  timeoutMs: number;
  /** Returns true once the boot has shown what the caller waits for; then the VM is powered off. */
  until: (lines: readonly ConsoleLine[]) => boolean | Promise<boolean>;
  /** Called for each console line as it arrives (e.g. to start the key service late). */
  onLine?: (line: ConsoleLine, all: readonly ConsoleLine[]) => void;
  /** More systemd credentials by name (SMBIOS type 11), e.g. debugDropIn(). */
  credentials?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  log?: Log;
}

/**
 * For diagnosis only: a drop-in (systemd >= 256 imports `systemd.unit-dropin.*` credentials)
 * that also copies the agent's stderr onto the serial console. Not used by the assertions.
 */
export function agentStderrDropIn(): Record<string, string> {
  return { 'systemd.unit-dropin.sextant-agent.service': '[Service]\nStandardError=journal+console\n' };
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

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Tails a file qemu appends to, splitting it into lines stamped with the host time. */
class SerialTail {
  private offset = 0;
  private partial = '';
  readonly lines: ConsoleLine[] = [];
  constructor(
    private readonly file: string,
    private readonly t0: bigint,
  ) {}

  async poll(): Promise<ConsoleLine[]> {
    const fh = await open(this.file, 'r').catch(() => undefined);
    if (!fh) return [];
    try {
      const fresh: ConsoleLine[] = [];
      for (;;) {
        const buf = Buffer.alloc(65536);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.partial += buf.subarray(0, bytesRead).toString('latin1');
      }
      const t = Number(process.hrtime.bigint() - this.t0) / 1e9;
      const parts = this.partial.split(/\r?\n/);
      this.partial = parts.pop() ?? '';
      for (const p of parts) {
        const text = p.replace(ANSI, '').replace(/\r/g, '');
        if (text.trim() === '') continue;
        const l = { t, text };
        this.lines.push(l);
        fresh.push(l);
      }
      return fresh;
    } finally {
      await fh.close();
    }
  }
}

/** ACPI power button through QMP, so the guest shuts down cleanly (its disks are synced). */
async function qmpPowerdown(socket: string): Promise<void> {
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

export function qemuArgs(o: { machine: NodeMachine; bootDisk: string; swtpmSocket: string; qmpSocket: string; serialLog: string; keyServicePort: number; agentConfig: unknown; credentials?: Record<string, string>; memoryMiB: number; cpus: number }): string[] {
  const bootFormat = o.bootDisk.endsWith('.qcow2') ? 'qcow2' : 'raw';
  const relay = `${process.execPath} --no-warnings ${path.join(REPO_ROOT, 'scripts/e2e/tcp-relay.mjs')} 127.0.0.1 ${o.keyServicePort}`;
  const credential = Buffer.from(JSON.stringify(o.agentConfig)).toString('base64');
  const sb = o.machine.secureBoot === true;
  const netdev = `user,id=net0,restrict=on,guestfwd=tcp:${GUEST_KEYSERVICE_ADDR}:${GUEST_KEYSERVICE_PORT}-cmd:${relay}`;
  return [
    '-machine', sb ? 'q35,smm=on' : 'q35,smm=off', '-accel', 'tcg', '-cpu', 'max', '-m', String(o.memoryMiB), '-smp', String(o.cpus),
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
  ];
}

/**
 * Boots the machine once: fresh swtpm process on its persistent state, qemu (TCG, OVMF, tpm-crb)
 * at nice 10, serial console to `serialLog`. Powers off once `until` holds, kills at `timeoutMs`.
 */
export async function bootNode(o: BootOptions): Promise<BootResult> {
  const log = o.log;
  const runDir = path.join(o.machine.dir, 'run');
  await mkdir(runDir, { recursive: true });
  await writeFile(o.serialLog, '');
  const qmpSocket = path.join(runDir, 'qmp.sock');
  const swtpm = await startSwtpmForVm(o.machine.tpm.stateDir, runDir, log);
  let child: ResultPromise | undefined;
  let qemuPid: number | undefined;
  try {
    const args = qemuArgs({ ...o, bootDisk: o.bootDisk ?? o.machine.bootDisk, swtpmSocket: swtpm.socket, qmpSocket, memoryMiB: o.memoryMiB ?? 2048, cpus: o.cpus ?? 2 });
    log?.(`+ nice -n 10 qemu-system-x86_64 ${args.map((a) => (a.startsWith('type=11') ? 'type=11,value=io.systemd.credential.binary:sextant.agent.json=<base64>' : a)).join(' ')}`);
    const t0 = process.hrtime.bigint();
    child = execa('nice', ['-n', '10', 'qemu-system-x86_64', ...args], { reject: false, stdin: 'ignore', encoding: 'utf8' });
    qemuPid = child.pid;
    if (qemuPid !== undefined) children.add(qemuPid);
    let exited = false;
    void child.finally(() => (exited = true));
    const tail = new SerialTail(o.serialLog, t0);
    const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
    let reason: BootResult['reason'] = 'exited';
    let untilSeconds: number | undefined;
    while (!exited) {
      await sleep(250);
      for (const l of await tail.poll()) o.onLine?.(l, tail.lines);
      if (untilSeconds === undefined && (await o.until(tail.lines))) {
        untilSeconds = elapsed();
        reason = 'until';
        log?.(`awaited state reached after ${untilSeconds.toFixed(1)} s: powering off`);
        await qmpPowerdown(qmpSocket);
        // A clean shutdown (needs logind in the guest) under TCG takes a while; after 45 s the
        // plug is pulled, which the agent must survive anyway (it fsyncs what it writes).
        const deadline = Date.now() + 45_000;
        while (!exited && Date.now() < deadline) {
          await sleep(250);
          for (const l of await tail.poll()) o.onLine?.(l, tail.lines);
        }
        if (!exited) {
          log?.('guest did not power off within 45 s: killing qemu');
          killQuietly(qemuPid);
        }
        break;
      }
      if (elapsed() * 1000 > o.timeoutMs) {
        reason = 'timeout';
        log?.(`boot timed out after ${(o.timeoutMs / 1000).toFixed(0)} s: killing qemu`);
        killQuietly(qemuPid);
        break;
      }
    }
    const r = await child;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const l of await tail.poll()) o.onLine?.(l, tail.lines);
    if (qemuPid !== undefined) children.delete(qemuPid);
    qemuPid = undefined;
    return { lines: tail.lines, seconds, reason, untilSeconds, qemuStderr: String(r.stderr ?? '') };
  } finally {
    if (qemuPid !== undefined) {
      killQuietly(qemuPid);
      children.delete(qemuPid);
    }
    if (child) await child.catch(() => undefined);
    await swtpm.stop();
  }
}

function killQuietly(pid: number | undefined): void {
  if (pid === undefined || !processAlive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The agent configuration the harness hands the guest (systemd credential sextant.agent.json). */
export function agentConfigFor(fingerprint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    keyservice: { url: GUEST_KEYSERVICE_URL, fingerprint },
    tpm: { tcti: 'device:/dev/tpmrm0' },
    stateDisk: { partLabel: STATE_PART_LABEL },
    ...extra,
  };
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
