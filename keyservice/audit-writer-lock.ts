import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { SextantError } from '../lib/errors.js';

/**
 * One writer per audit log. The log is a hash chain with one appender that keeps the head in
 * memory: a second process appending (another `sextant keyservice` on the same log, or an
 * admin's `keyservice disk rebind` while the service runs) would fork the chain. So each of
 * them holds LOG.lock (`{pid, holder, since}`, created exclusively) while it has the log
 * open. A lock whose process is gone (kill -9, power loss) is taken over; a live one is
 * AUDIT_LOG_IN_USE.
 */

export interface AuditWriterLock {
  release(): Promise<void>;
}

interface LockInfo {
  pid: number;
  holder: string;
  since: string;
}

export async function lockAuditLog(logPath: string, holder: string): Promise<AuditWriterLock> {
  const file = logPath + '.lock';
  const info: LockInfo = { pid: process.pid, holder, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a temporary name, then linked: the lock file is never seen half-written.
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, JSON.stringify(info) + '\n', { mode: 0o600, flag: 'wx' });
      await link(tmp, file);
      return { release: () => unlink(file).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SextantError({ code: 'IO_FAILED', message: `cannot create ${file}`, cause: e });
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const other = await readLock(file);
    if (other && alive(other.pid)) {
      throw new SextantError({ code: 'AUDIT_LOG_IN_USE', message: `${logPath} is open in ${other.holder} (pid ${other.pid}, since ${other.since}); stop it first` });
    }
    // Left by a process that died: take it over.
    await unlink(file).catch(() => undefined);
  }
  throw new SextantError({ code: 'AUDIT_LOG_IN_USE', message: `could not take ${file} (another process keeps taking it)` });
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const l = JSON.parse(await readFile(file, 'utf8')) as Partial<LockInfo>;
    return Number.isInteger(l.pid) && (l.pid as number) > 0 ? (l as LockInfo) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
