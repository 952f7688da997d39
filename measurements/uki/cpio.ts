/**
 * The newc cpio archives systemd-stub generates in memory and appends to the initrd it hands
 * the kernel (systemd src/boot/efi/cpio.c, pack_cpio_literal): one archive per embedded file,
 * holding the directory (mode 0555 unless told otherwise; every leading path component gets its
 * own entry), the file, and a trailer. Inodes count up from 1 within each archive, uid/gid and
 * mtime are 0, nlink 1, and every header+name and every file body is zero-padded to 4 bytes
 * relative to the archive start. PCR 9 covers these bytes, so they must match exactly.
 */

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function word(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

interface Entry {
  ino: number;
  mode: number;
  name: string;
  body: Uint8Array;
}

function header(e: Entry): string {
  return (
    '070701' +
    word(e.ino) +
    word(e.mode) +
    word(0) + // uid
    word(0) + // gid
    word(1) + // nlink
    word(0) + // mtime: 0, so the measurement is stable across boots
    word(e.body.length) +
    word(0) + // devmajor
    word(0) + // devminor
    word(0) + // rdevmajor
    word(0) + // rdevminor
    word(Buffer.byteLength(e.name) + 1) +
    word(0) // check
  );
}

/** systemd writes the trailer with an upper-case name size ("0000000B"), unlike GNU cpio. */
const TRAILER = Buffer.from('070701' + '00000000'.repeat(4) + '00000001' + '00000000'.repeat(6) + '0000000B' + '00000000' + 'TRAILER!!!\0\0\0\0', 'latin1');

export interface CpioLiteralOptions {
  /** Target directory without leading or trailing slash, e.g. `.extra`. */
  dir: string;
  fileName: string;
  dirMode?: number;
  fileMode?: number;
}

/** One archive holding `dir/fileName` with `data`, byte-for-byte as systemd-stub builds it. */
export function cpioLiteral(data: Uint8Array, { dir, fileName, dirMode = 0o555, fileMode = 0o444 }: CpioLiteralOptions): Buffer {
  const entries: Entry[] = [];
  let ino = 1;
  const parts = dir.split('/').filter((p) => p !== '');
  // leading components (mkdir -p) get 0555; the final directory the requested mode
  for (let i = 1; i < parts.length; i++) entries.push({ ino: ino++, mode: S_IFDIR | 0o555, name: parts.slice(0, i).join('/'), body: new Uint8Array(0) });
  entries.push({ ino: ino++, mode: S_IFDIR | dirMode, name: parts.join('/'), body: new Uint8Array(0) });
  entries.push({ ino: ino++, mode: S_IFREG | fileMode, name: `${parts.join('/')}/${fileName}`, body: data });

  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array): void => {
    chunks.push(b);
    size += b.length;
  };
  for (const e of entries) {
    push(Buffer.from(header(e) + e.name + '\0', 'latin1'));
    push(new Uint8Array(pad4(size)));
    if (e.body.length > 0) {
      push(e.body);
      push(new Uint8Array(pad4(size)));
    }
  }
  push(TRAILER);
  return Buffer.concat(chunks);
}
