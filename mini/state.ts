/**
 * The mini cluster's state folder (default .sextant-mini/): one state.json that records every
 * process the cluster started (PID, start time, identifying path), each node's machine, and
 * the key service's files; plus a lock so two commands never change it at once. Opening the
 * folder reconciles it with what runs: a recorded process that is gone, or whose PID now
 * belongs to another program, is dropped from the record (never signalled), and a process a
 * crashed command started but did not record yet (its PID file is in the folder) is adopted.
 *
 *   .sextant-mini/state.json            this file's contents (MiniState)
 *   .sextant-mini/lock                  the command holding the folder (a ProcessRecord)
 *   .sextant-mini/ek-ca/                the test CA every node's EK certificate chains to
 *   .sextant-mini/keyservice/           measurements (re-signed), TLS, cluster CA, its log
 *   .sextant-mini/keyservice/state/     the key service's own state (master secret, audit log)
 *   .sextant-mini/nodes/NAME/           TPM state, OVMF vars, disks, serial.log, run/ (PID files, QMP)
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { isSameProcess, processStartTicks, recordProcess, type ProcessRecord } from './proc.js';
import type { NodeMilestones } from './node-view.js';
import type { Accel } from './qemu.js';

export const DEFAULT_MINI_DIR = '.sextant-mini';

export interface KeyServiceRecord {
  port: number;
  fingerprint: string;
  clusterId: string;
  stateDir: string;
  files: { measurements: string; measurementsKey: string; measurementsSignKey?: string; tlsCert: string; tlsKey: string; config: string };
  process?: ProcessRecord;
  startedAt?: string;
}

export interface NodeBootRecord {
  startedAt: string;
  accel: Accel;
  cpus: number;
  memoryMiB: number;
  qemu?: ProcessRecord;
  swtpm?: ProcessRecord;
  /** Seconds after qemu's start when the watcher first saw each milestone. */
  milestones?: NodeMilestones;
}

export interface NodeRecord {
  name: string;
  /** The image folder it boots (sextant-node.raw, measurements.json). */
  image: string;
  /** That image's version (its measurements' image.version), recorded when the node was made. */
  imageVersion?: string;
  dir: string;
  /** Its state partition's GUID: the disk UUID its key is derived for and the audit log names. */
  statePartUuid: string;
  createdAt: string;
  boot?: NodeBootRecord;
  /** Set by stopNode: the node is down on purpose (`up` does not boot it again). */
  stoppedAt?: string;
}

export interface MiniState {
  v: 1;
  createdAt: string;
  image?: { dir: string };
  keyservice?: KeyServiceRecord;
  nodes: Record<string, NodeRecord>;
}

export const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/;

export function emptyState(): MiniState {
  return { v: 1, createdAt: new Date().toISOString(), nodes: {} };
}

function isRecordLike(x: unknown): x is ProcessRecord {
  const r = x as ProcessRecord;
  return typeof r === 'object' && r !== null && Number.isInteger(r.pid) && typeof r.marker === 'string';
}

/** Checks the shape of a state.json (a hand-edited or foreign file is MINI_STATE_INVALID, nothing is signalled). */
export function parseState(text: string, file: string): MiniState {
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (e) {
    throw new SextantError({ code: 'MINI_STATE_INVALID', message: `${file} is not JSON: ${(e as Error).message}` });
  }
  const st = s as MiniState;
  const bad = (why: string): never => {
    throw new SextantError({ code: 'MINI_STATE_INVALID', message: `${file}: ${why} (move the folder away, or fix the file)` });
  };
  if (typeof st !== 'object' || st === null || st.v !== 1) bad('not a version 1 mini state');
  if (typeof st.nodes !== 'object' || st.nodes === null || Array.isArray(st.nodes)) bad('nodes is not an object');
  for (const [name, n] of Object.entries(st.nodes)) {
    if (!NODE_NAME_RE.test(name) || n?.name !== name || typeof n.dir !== 'string' || typeof n.image !== 'string') bad(`node ${JSON.stringify(name).slice(0, 40)} is malformed`);
    for (const p of [n.boot?.qemu, n.boot?.swtpm]) if (p !== undefined && !isRecordLike(p)) bad(`node ${name} has a malformed process record`);
  }
  if (st.keyservice?.process !== undefined && !isRecordLike(st.keyservice.process)) bad('the key service has a malformed process record');
  return st;
}

export async function readState(dir: string): Promise<MiniState | undefined> {
  const file = path.join(dir, 'state.json');
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  return text === undefined ? undefined : parseState(text, file);
}

/** Replaces state.json atomically (a crash leaves the old or the new file, never half of one). */
export async function writeState(dir: string, s: MiniState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'state.json');
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(s, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** The folder's lock: held by one command (this process) at a time; a dead holder's lock is taken over. */
export interface StateLock {
  release(): Promise<void>;
}

export async function lockState(dir: string): Promise<StateLock> {
  // 0700: the folder holds throwaway but real keys (TLS, cluster CA, measurements signer).
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'lock');
  const mine = recordProcess(process.pid, process.argv[1] ?? 'node');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(JSON.stringify(mine) + '\n');
      await fh.close();
      return { release: () => rm(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: unknown;
    try {
      holder = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      holder = undefined; // torn or empty: its writer died mid-write
    }
    if (isRecordLike(holder) && holder.pid !== process.pid && isSameProcess(holder)) {
      throw new SextantError({ code: 'MINI_BUSY', message: `another sextant mini command (PID ${holder.pid}) is using ${dir}; wait for it, or stop it` });
    }
    await rm(file, { force: true });
  }
  throw new SextantError({ code: 'MINI_BUSY', message: `could not take the lock ${file}` });
}

/** What reconcile changed, for the caller to report. */
export interface Reconciled {
  /** Records of processes that are gone (cleaned). */
  gone: string[];
  /** Records whose PID now belongs to another process (dropped, never signalled). */
  reused: string[];
  /** Processes found by their PID file only, now recorded. */
  adopted: string[];
}

function check(what: string, r: ProcessRecord | undefined, out: Reconciled): ProcessRecord | undefined {
  if (r === undefined) return undefined;
  if (isSameProcess(r)) return r;
  (processStartTicks(r.pid) === undefined ? out.gone : out.reused).push(`${what} (PID ${r.pid})`);
  return undefined;
}

/** A PID file QEMU or swtpm wrote, if the process it names runs with `marker` on its command line. */
function adoptFromPidFile(file: string, marker: string): ProcessRecord | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  const r = Number.isInteger(pid) && pid > 1 ? recordProcess(pid, marker) : undefined;
  return r && isSameProcess(r) ? r : undefined;
}

export const nodeRunDir = (n: NodeRecord): string => path.join(n.dir, 'run');
export const nodeSerialLog = (n: NodeRecord): string => path.join(n.dir, 'serial.log');
export const nodeTpmStateDir = (n: NodeRecord): string => path.join(n.dir, 'tpm', 'state');

/**
 * Brings the records in line with the running processes (see the file comment); stale PID
 * files are removed. Pure bookkeeping: nothing is started or signalled.
 */
export async function reconcileState(s: MiniState): Promise<Reconciled> {
  const out: Reconciled = { gone: [], reused: [], adopted: [] };
  if (s.keyservice) s.keyservice.process = check('key service', s.keyservice.process, out);
  for (const n of Object.values(s.nodes)) {
    if (!n.boot) continue;
    n.boot.qemu = check(`${n.name} qemu`, n.boot.qemu, out);
    n.boot.swtpm = check(`${n.name} swtpm`, n.boot.swtpm, out);
    const run = nodeRunDir(n);
    if (!n.boot.qemu) {
      n.boot.qemu = adoptFromPidFile(path.join(run, 'qemu.pid'), nodeSerialLog(n));
      if (n.boot.qemu) out.adopted.push(`${n.name} qemu (PID ${n.boot.qemu.pid})`);
      else await rm(path.join(run, 'qemu.pid'), { force: true });
    }
    if (!n.boot.swtpm) {
      n.boot.swtpm = adoptFromPidFile(path.join(run, 'swtpm-vm.pid'), nodeTpmStateDir(n));
      if (n.boot.swtpm) out.adopted.push(`${n.name} swtpm (PID ${n.boot.swtpm.pid})`);
      else await rm(path.join(run, 'swtpm-vm.pid'), { force: true });
    }
  }
  return out;
}

/** Every process record in the state (what `down` stops), keyed by what it is. */
export function recordedProcesses(s: MiniState): { what: string; record: ProcessRecord }[] {
  const out: { what: string; record: ProcessRecord }[] = [];
  for (const n of Object.values(s.nodes)) {
    if (n.boot?.qemu) out.push({ what: `${n.name} qemu`, record: n.boot.qemu });
    if (n.boot?.swtpm) out.push({ what: `${n.name} swtpm`, record: n.boot.swtpm });
  }
  if (s.keyservice?.process) out.push({ what: 'key service', record: s.keyservice.process });
  return out;
}

export async function writeJson(file: string, v: unknown): Promise<void> {
  await writeFile(file + '.tmp', JSON.stringify(v) + '\n');
  await rename(file + '.tmp', file);
}
