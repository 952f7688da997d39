import { readFile, readlink, symlink, unlink } from 'node:fs/promises';
import { SextantError } from '../lib/errors.js';

/**
 * One writer per audit log. The log is a hash chain with one appender that keeps the head in
 * memory: a second process appending (another `sextant keyservice` on the same log, or an
 * admin's `keyservice disk rebind` while the service runs) would fork the chain. So each of
 * them holds LOG.lock (`{pid, holder, since, start}`, created exclusively) while it has the log
 * open. A lock whose process is gone (kill -9, power loss, or its pid now another process's)
 * is taken over; a live one is AUDIT_LOG_IN_USE.
 */

export interface AuditWriterLock {
  release(): Promise<void>;
}

interface LockInfo {
  pid: number;
  holder: string;
  since: string;
  start?: string;
}

export async function lockAuditLog(logPath: string, holder: string): Promise<AuditWriterLock> {
  const file = logPath + '.lock';
  const info: LockInfo = { pid: process.pid, holder, since: new Date().toISOString(), start: await startTime(process.pid) };
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock is a symlink whose target is the JSON: created atomically and whole, and short
    // enough to live in the inode, so it can be taken on a full disk too (the service must
    // come up there and refuse with AUDIT_UNAVAILABLE until space returns).
    try {
      await symlink(JSON.stringify(info), file);
      return { release: () => unlink(file).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SextantError({ code: 'IO_FAILED', message: `cannot create ${file}`, cause: e });
    }
    const other = await readLock(file);
    if (other && (await alive(other))) {
      throw new SextantError({ code: 'AUDIT_LOG_IN_USE', message: `${logPath} is open in ${other.holder} (pid ${other.pid}, since ${other.since}); stop it first` });
    }
    // Left by a process that died: take it over.
    await unlink(file).catch(() => undefined);
  }
  throw new SextantError({ code: 'AUDIT_LOG_IN_USE', message: `could not take ${file} (another process keeps taking it)` });
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    // A symlink (this format) or a regular file holding the same JSON.
    const text = await readlink(file).catch(() => readFile(file, 'utf8'));
    const l = JSON.parse(text) as Partial<LockInfo>;
    return Number.isInteger(l.pid) && (l.pid as number) > 0 ? (l as LockInfo) : undefined;
  } catch {
    return undefined;
  }
}

/** The process's start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused pid apart. */
async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function alive(l: LockInfo): Promise<boolean> {
  try {
    process.kill(l.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // The pid is taken; by the holder only if it started when the holder did (pid_max can be 32768).
  return l.start === undefined || (await startTime(l.pid)) === l.start;
}
