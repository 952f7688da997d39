/**
 * One node as a cloud would give it: real firmware (OVMF) with its own variable store, a real
 * TPM 2.0 (swtpm, EK certificate from a test CA), a copy-on-write boot disk over the built
 * image, and a blank state disk. A machine keeps all of it across its boots (a reboot of the
 * same node).
 */
import { copyFile, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { hasTool, run } from '../lib/exec.js';
import { SextantError } from '../lib/errors.js';
import { provisionSwtpm, type EkCa, type Log, type ProvisionedTpm } from './swtpm.js';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** OVMF built with Secure Boot and SMM (the variable store is only writable from SMM). */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';

export const STATE_PART_LABEL = 'sextant-state';
/** The state disk's GUIDs when none are given (the e2e boots; a mini cluster gives each node its own). */
export const DEFAULT_STATE_DISK_GUIDS = { disk: '5e7a7e00-0000-4000-8000-000000000001', partition: '5e7a7e00-0000-4000-8000-000000000002' } as const;

const VM_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'swtpm', 'swtpm_setup', 'sgdisk', 'openssl', 'mcopy', 'sfdisk'];

/** A missing tool is a loud TOOL_MISSING, never a skip. */
export async function assertVmToolsPresent(): Promise<void> {
  const missing: string[] = [];
  for (const t of VM_TOOLS) if (!(await hasTool(t))) missing.push(t);
  for (const f of [OVMF_CODE, OVMF_VARS]) if (!(await readFile(f).then(() => true, () => false))) missing.push(f);
  if (missing.length) {
    throw new SextantError({
      code: 'TOOL_MISSING',
      message: `the node VM needs ${missing.join(', ')} (Debian: qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools gdisk openssl mtools fdisk; npm run setup installs them)`,
    });
  }
}

/** One node: its TPM, firmware variables and disks, kept across its boots. */
export interface NodeMachine {
  dir: string;
  tpm: ProvisionedTpm;
  /** OVMF_VARS copy: the node's NVRAM (boot entries OVMF writes on first boot persist). */
  vars: string;
  /** Copy-on-write overlay over the image's raw disk (the built image stays pristine). */
  bootDisk: string;
  /** Raw GPT disk with one partition labelled sextant-state, all zeros inside. */
  stateDisk: string;
  /** The state partition's GUID (lowercase): the disk UUID the agent sends and its key is derived for. */
  statePartUuid?: string;
  /** Secure Boot on: OVMF's secure-boot build with SMM, `vars` started from an enrolled store. */
  secureBoot?: boolean;
}

export interface CreateMachineOptions {
  image: string;
  dir: string;
  stateDiskMiB?: number;
  secureBootVars?: string;
  /** The EK CA its TPM's certificate chains to (shared by a cluster's nodes); a new one per machine otherwise. */
  ekCa?: EkCa;
  stateDiskGuids?: { disk: string; partition: string };
  log?: Log;
}

export async function createNodeMachine(o: CreateMachineOptions): Promise<NodeMachine> {
  await assertVmToolsPresent();
  await mkdir(o.dir, { recursive: true });
  const tpm = await provisionSwtpm(path.join(o.dir, 'tpm'), { pcrBanks: ['sha1', 'sha256'], ca: o.ekCa, log: o.log });
  const vars = path.join(o.dir, 'OVMF_VARS.fd');
  await copyFile(o.secureBootVars ?? OVMF_VARS, vars);
  const bootDisk = path.join(o.dir, 'boot.qcow2');
  await createOverlay(o.image, bootDisk, o.log);
  const stateDisk = path.join(o.dir, 'state.img');
  const guids = o.stateDiskGuids ?? DEFAULT_STATE_DISK_GUIDS;
  await createStateDisk(stateDisk, o.stateDiskMiB ?? 256, o.log, guids);
  return { dir: o.dir, tpm, vars, bootDisk, stateDisk, statePartUuid: guids.partition.toLowerCase(), secureBoot: o.secureBootVars !== undefined };
}

export async function createOverlay(rawImage: string, overlay: string, log?: Log): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.resolve(rawImage), '-F', 'raw', overlay], { log });
}

/**
 * A blank state disk as a cloud volume would come: a GPT with one partition named
 * sextant-state, nothing inside it (blkid finds no signature: "blank").
 */
export async function createStateDisk(file: string, sizeMiB: number, log?: Log, guids: { disk: string; partition: string } = DEFAULT_STATE_DISK_GUIDS): Promise<void> {
  const fh = await open(file, 'w');
  await fh.truncate(sizeMiB * 1024 * 1024);
  await fh.close();
  // The partition's size must be a multiple of 4096 bytes: the agent formats LUKS2 with
  // 4096-byte sectors, and cryptsetup refuses a device whose size is not aligned to them
  // (sgdisk's 1:0:0 left 522207 512-byte sectors). The backup GPT takes the last 33 sectors.
  const sectors = sizeMiB * 2048;
  const end = 2048 + Math.floor((sectors - 34 - 2048) / 8) * 8 - 1;
  await run('sgdisk', ['-o', '-n', `1:2048:${end}`, '-t', '1:8300', '-c', `1:${STATE_PART_LABEL}`, '-U', guids.disk, '-u', `1:${guids.partition}`, file], { log });
}
