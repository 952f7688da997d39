import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fail } from '../../lib/errors.js';
import { zeroize } from '../../lib/bytes.js';

/** cryptsetup's own default limit for a key file is 8 MiB; a disk key is 32-64 bytes. */
const MAX_KEY_BYTES = 8192;

/**
 * Reads a disk key from a file or from stdin (`-`) into one buffer the caller zeroes.
 * Intermediate chunks are zeroed here. The bytes are used as-is (no newline trimming):
 * cryptsetup's `--key-file -` reads them the same way.
 */
export async function readKey(source: string, stdin: Readable): Promise<Buffer> {
  let key: Buffer;
  if (source === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const c of stdin) {
        const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
        chunks.push(b);
        total += b.length;
        if (total > MAX_KEY_BYTES) fail('KEY_INVALID', `the key on stdin is longer than ${MAX_KEY_BYTES} bytes`);
      }
      key = Buffer.concat(chunks, total);
    } finally {
      zeroize(...chunks);
    }
  } else {
    try {
      key = await readFile(source);
    } catch (cause) {
      fail('FILE_NOT_FOUND', `cannot read the key file ${source}`, cause);
    }
    if (key.length > MAX_KEY_BYTES) {
      zeroize(key);
      fail('KEY_INVALID', `${source} is longer than ${MAX_KEY_BYTES} bytes`);
    }
  }
  if (key.length < 16) {
    zeroize(key);
    fail('KEY_INVALID', `the disk key has ${key.length} bytes; at least 16 are required`);
  }
  return key;
}
