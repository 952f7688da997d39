/**
 * Processes the mini cluster started, named so they can be found again by a later command
 * (`sextant mini status`, `down`, an `up` after a crash) and stopped without ever signalling
 * a process that merely reuses a recorded PID: a record holds the PID, the kernel's start time
 * of that process (/proc/PID/stat field 22, clock ticks since boot) and a marker that must
 * appear in its command line (a path inside the state folder).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  pid: number;
  /** /proc/PID/stat starttime; undefined when it could not be read at start (then the marker alone decides). */
  startTicks?: number;
  /** A string the process's command line contains (its state path). */
  marker: string;
}

/** starttime (field 22) of /proc/PID/stat, or undefined when there is no such process. */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); a zombie has exited already: treat it as gone.
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const ticks = Number(rest[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** The NUL-separated command line of PID joined with spaces, or undefined. */
export function processCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** A record for a process that is running now (its start time read at once). */
export function recordProcess(pid: number, marker: string): ProcessRecord {
  return { pid, startTicks: processStartTicks(pid), marker };
}

/** True only while the recorded process itself runs: same PID, same start time, marker in its command line. */
export function isSameProcess(r: ProcessRecord): boolean {
  if (!Number.isInteger(r.pid) || r.pid <= 1) return false;
  const ticks = processStartTicks(r.pid);
  if (ticks === undefined) return false;
  if (r.startTicks !== undefined && ticks !== r.startTicks) return false;
  return processCmdline(r.pid)?.includes(r.marker) === true;
}

export type StopOutcome = 'stopped' | 'killed' | 'gone' | 'not-ours';

/**
 * SIGTERM, then SIGKILL after `graceMs`, each only after checking the PID is still the
 * recorded process. 'gone': it had exited; 'not-ours': the PID now belongs to another process
 * (left alone).
 */
export async function stopProcess(r: ProcessRecord, graceMs = 5000): Promise<StopOutcome> {
  if (processStartTicks(r.pid) === undefined) return 'gone';
  if (!isSameProcess(r)) return 'not-ours';
  try {
    process.kill(r.pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    if (!isSameProcess(r)) return 'stopped';
  }
  if (!isSameProcess(r)) return 'stopped';
  try {
    process.kill(r.pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  for (let i = 0; i < 100 && isSameProcess(r); i++) await sleep(50);
  return 'killed';
}
