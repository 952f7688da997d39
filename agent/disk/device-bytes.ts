import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { fail } from '../../lib/errors.js';
import type { Runner } from './runner.js';

/** Size in bytes of a block device (blockdev) or a regular image file (stat). */
export async function deviceSize(device: string, runner: Runner): Promise<number> {
  let st;
  try {
    st = await stat(device);
  } catch (cause) {
    fail('DISK_NOT_FOUND', `${device} does not exist`, cause);
  }
  if (st.isFile()) return st.size;
  if (!st.isBlockDevice()) fail('DISK_NOT_FOUND', `${device} is neither a block device nor an image file`);
  const r = await runner('blockdev', ['--getsize64', device]);
  const n = Number(r.stdout.trim());
  if (!Number.isSafeInteger(n) || n <= 0) fail('DISK_STEP_FAILED', `blockdev reported an unusable size for ${device}: ${r.stdout.trim()}`);
  return n;
}

/**
 * True when every byte of [offset, offset+length) is zero. Reads through node, not a tool:
 * this is the check that stands between the agent and someone's data, so it reads every byte.
 */
export async function isRangeZero(device: string, offset: number, length: number): Promise<boolean> {
  const fh = await open(device, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(length, 1024 * 1024));
    const zeros = Buffer.alloc(chunk.length);
    let done = 0;
    while (done < length) {
      const want = Math.min(chunk.length, length - done);
      const { bytesRead } = await fh.read(chunk, 0, want, offset + done);
      if (bytesRead === 0) return false; // shorter than expected: not provably blank
      if (!chunk.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) return false;
      done += bytesRead;
    }
    return true;
  } finally {
    await fh.close();
  }
}

/** SHA-256 of [0, length): the fingerprint a reset authorization names (see reset.ts). */
export async function headFingerprint(device: string, length: number): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(device, 'r');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, length - done), done);
      if (bytesRead === 0) break;
      h.update(chunk.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}
