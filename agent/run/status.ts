import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../lib/write-file-atomic.js';
import { fail } from '../../lib/errors.js';
import type { Role } from '../../protocol/messages.js';

/** The boot agent's steps, in order. Each one is idempotent; the status file says which are done. */
export const STEPS = ['config', 'inventory', 'find-disk', 'attest', 'disk', 'lock', 'join', 'done'] as const;
export type StepName = (typeof STEPS)[number];

/** join: a new node (blank state disk: format, kubeadm join). rejoin: our state disk (open, start kubelet). */
export type BootPath = 'join' | 'rejoin';

export interface StepRecord {
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  finishedAt?: string;
  ms?: number;
  /** The step's structured result (never a secret). */
  detail?: Record<string, unknown>;
}

/**
 * What the agent persists between restarts within one boot (/run is a tmpfs: a reboot starts
 * from nothing, which is right: PCRs and mappings reset too). Nothing secret is in here.
 */
export interface AgentStatus {
  v: 1;
  /** /proc/sys/kernel/random/boot_id: a status from another boot is ignored, whatever file it is in. */
  bootId: string;
  /** How many times the agent started in this boot. */
  runs: number;
  startedAt: string;
  updatedAt: string;
  /** The step running now, or the last one that ran. */
  step: StepName;
  /** waiting: retrying an unreachable key service (with backoff). */
  outcome: 'running' | 'waiting' | 'done' | 'failed';
  path?: BootPath;
  /** What the key service was asked for (decided by PCR 15 and the path). */
  role?: Role;
  device?: string;
  diskUuid?: string;
  /** What the state disk held when the agent first looked in this boot. */
  diskFound?: 'blank' | 'sextant' | 'sextant-unfinished';
  clusterId?: string;
  keySource?: 'keyservice' | 'recovery';
  /** The key service endpoint (URL) that answered the last attestation of this boot. */
  keyservice?: string;
  steps: Partial<Record<StepName, StepRecord>>;
  lastError?: { step: StepName; code: string; message: string; at: string };
}

export interface StatusStore {
  load(): Promise<AgentStatus | undefined>;
  save(s: AgentStatus): Promise<void>;
}

export function isAgentStatus(x: unknown): x is AgentStatus {
  const s = x as AgentStatus;
  return typeof s === 'object' && s !== null && s.v === 1 && typeof s.bootId === 'string' && typeof s.steps === 'object' && (STEPS as readonly string[]).includes(s.step);
}

/** Reads a status file; undefined when there is none. A file that is not a status is an error (someone else's file). */
export async function readStatusFile(file: string): Promise<AgentStatus | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    fail('IO_FAILED', `cannot read the agent status ${file}`, e);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (cause) {
    fail('IO_FAILED', `${file} is not JSON (a torn write is impossible: the file is replaced atomically)`, cause);
  }
  if (!isAgentStatus(j)) fail('IO_FAILED', `${file} is not an agent status file`);
  return j;
}

export function fileStatusStore(file: string): StatusStore {
  return {
    load: () => readStatusFile(file),
    save: (s) => writeFileAtomic(file, JSON.stringify(s, null, 2) + '\n', 0o600),
  };
}

/** A human table of the status (`sextant agent status` without --json). */
export function renderStatus(s: AgentStatus): string {
  const lines = [
    `outcome ${s.outcome} at step ${s.step} (run ${s.runs} this boot, since ${s.startedAt})`,
    ...(s.path ? [`path ${s.path}${s.role ? `, key service role ${s.role}` : ''}${s.keySource ? `, key from ${s.keySource}` : ''}${s.keySource === 'keyservice' && s.keyservice ? ` at ${s.keyservice}` : ''}`] : []),
    ...(s.device ? [`state disk ${s.device} (uuid ${s.diskUuid ?? '?'}, found ${s.diskFound ?? '?'})`] : []),
    ...(s.clusterId ? [`cluster ${s.clusterId}`] : []),
    '',
    `${'STEP'.padEnd(10)} ${'STATE'.padEnd(8)} ${'MS'.padStart(8)}  FINISHED`,
  ];
  for (const name of STEPS) {
    const r = s.steps[name];
    lines.push(`${name.padEnd(10)} ${(r?.state ?? '-').padEnd(8)} ${(r?.ms !== undefined ? String(r.ms) : '').padStart(8)}  ${r?.finishedAt ?? ''}`);
  }
  if (s.lastError) lines.push('', `last error at ${s.lastError.step} (${s.lastError.at}): ${s.lastError.code}: ${s.lastError.message}`);
  return lines.join('\n');
}
