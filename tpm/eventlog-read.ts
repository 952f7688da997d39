/**
 * Reads the firmware's TCG event log from securityfs. The file is a kernel seq_file: its size
 * reads as 0 and reading it in small pieces can return a corrupted log on some kernels, so it
 * is read with one read() into a buffer large enough for all of it (a read that fills the
 * buffer is retried from the start with a larger one).
 */
import { open } from 'node:fs/promises';
import { SextantError } from '../lib/errors.js';

export const EVENTLOG_PATH = '/sys/kernel/security/tpm0/binary_bios_measurements';

const FIRST_BUFFER = 1 << 20;
const MAX_BUFFER = 64 << 20;

export async function readEventLog(file = EVENTLOG_PATH): Promise<Uint8Array> {
  for (let size = FIRST_BUFFER; size <= MAX_BUFFER; size *= 4) {
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new SextantError({ code: 'FILE_NOT_FOUND', message: `no TPM event log at ${file} (no TPM, or securityfs not mounted)`, cause: e });
      }
      throw new SextantError({ code: 'IO_FAILED', message: `cannot open the TPM event log ${file}: ${code ?? String(e)}`, cause: e });
    }
    try {
      const buffer = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buffer, 0, size, 0);
      if (bytesRead < size) return Uint8Array.from(buffer.subarray(0, bytesRead));
    } catch (e) {
      throw new SextantError({ code: 'IO_FAILED', message: `cannot read the TPM event log ${file}`, cause: e });
    } finally {
      await fh.close();
    }
  }
  throw new SextantError({ code: 'IO_FAILED', message: `the TPM event log ${file} is larger than ${MAX_BUFFER} bytes` });
}
