/**
 * Reads an event log file. The kernel's securityfs file (binary_bios_measurements) reports
 * size 0 and must be read from the start in as few reads as possible (a reader that seeks or
 * restarts can see a corrupted log), so this asks for everything in one large read and only
 * loops for files that deliver less per call (pipes).
 */
import { open } from 'node:fs/promises';
import { fail, isSextantError } from '../../lib/errors.js';

/** Larger than any firmware log seen (tens to hundreds of KiB); bounds memory on bad input. */
export const MAX_EVENT_LOG_BYTES = 64 * 1024 * 1024;
const FIRST_READ = 4 * 1024 * 1024;

export async function readEventLogFile(path: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail('FILE_NOT_FOUND', `event log not found: ${path}`, e);
    fail('IO_FAILED', `cannot open event log ${path}: ${(e as Error).message}`, e);
  }
  try {
    const { size } = await fh.stat();
    let buf = Buffer.alloc(Math.min(Math.max(size + 1, FIRST_READ), MAX_EVENT_LOG_BYTES + 1));
    let used = 0;
    for (;;) {
      if (used === buf.length) {
        if (buf.length > MAX_EVENT_LOG_BYTES) fail('INVALID_ARGUMENT', `event log ${path} is larger than ${MAX_EVENT_LOG_BYTES} bytes`);
        const bigger = Buffer.alloc(Math.min(buf.length * 2, MAX_EVENT_LOG_BYTES + 1));
        buf.copy(bigger);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, used, buf.length - used, null);
      if (bytesRead === 0) break;
      used += bytesRead;
    }
    return buf.subarray(0, used);
  } catch (e) {
    if (isSextantError(e)) throw e;
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') fail('INVALID_ARGUMENT', `${path} is a directory, not an event log`, e);
    fail('IO_FAILED', `cannot read event log ${path}: ${(e as Error).message}`, e);
  } finally {
    await fh.close();
  }
}

/** Reads a whole stream (stdin for `FILE = -`) with the same size bound. */
export async function readEventLogStream(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    total += b.length;
    if (total > MAX_EVENT_LOG_BYTES) fail('INVALID_ARGUMENT', `event log on stdin is larger than ${MAX_EVENT_LOG_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
