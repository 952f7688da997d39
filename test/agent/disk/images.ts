import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, truncate, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Test-only helpers that build disk images with the real tools (cryptsetup, mkfs, sgdisk). */

export const MiB = 1024 * 1024;

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sextant-disk-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A temp folder removed after the test, holding `key` as a 0600 key file. */
export async function keyFileDir(t: { teardown: (f: () => Promise<void>) => void }, key: Uint8Array): Promise<{ dir: string; keyFile: string }> {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const keyFile = path.join(dir, 'key');
  await writeFile(keyFile, key, { mode: 0o600 });
  return { dir, keyFile };
}

export async function sparseImage(file: string, bytes = 48 * MiB): Promise<string> {
  await writeFile(file, '');
  await truncate(file, bytes);
  return file;
}

export async function writeAt(file: string, offset: number, data: Uint8Array): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

/** Random bytes in the middle of the image: "pre-existing data" that no step may touch. */
export async function plantData(file: string, offset = 24 * MiB, length = 2 * MiB): Promise<void> {
  await writeAt(file, offset, randomBytes(length));
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

export async function sha256Range(file: string, offset: number, length: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return createHash('sha256').update(b).digest('hex');
  } finally {
    await fh.close();
  }
}

export async function cryptsetup(args: string[], key?: Uint8Array) {
  return execa('cryptsetup', args, { input: key === undefined ? undefined : Buffer.from(key), reject: false });
}

export async function luksJson(file: string): Promise<any> {
  const r = await execa('cryptsetup', ['luksDump', '--dump-json-metadata', file]);
  return JSON.parse(r.stdout);
}

/** blkid's own view (the independent oracle for labels and types). */
export async function blkid(file: string): Promise<Record<string, string>> {
  const r = await execa('blkid', ['-p', '-o', 'export', file], { reject: false });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

export const FOREIGN_FORMAT = ['luksFormat', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', '--batch-mode'];
