/**
 * A deterministic newc ("070701") cpio writer: entries sorted by path, mtime 0, owner 0:0,
 * inode numbers by position. The capture initrd is built with it so a UKI rebuilt from the
 * same inputs has the same bytes, and therefore the same PCRs.
 */

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, data: Uint8Array, name: string, rdev: [number, number] = [0, 0]): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const header =
    '070701' +
    [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0].map(hex8).join('');
  const head = Buffer.concat([Buffer.from(header, 'ascii'), nameBytes]);
  return Buffer.concat([head, Buffer.alloc(pad4(head.length)), Buffer.from(data), Buffer.alloc(pad4(data.length))]);
}

/** Serializes entries (sorted by path, so parents precede children) into a newc archive. */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  sorted.forEach((e, i) => {
    const ino = i + 1;
    switch (e.kind) {
      case 'dir':
        parts.push(record(ino, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), e.path));
        break;
      case 'file':
        parts.push(record(ino, S_IFREG | (e.mode ?? 0o644), e.data, e.path));
        break;
      case 'symlink':
        parts.push(record(ino, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), e.path));
        break;
      case 'chardev':
        parts.push(record(ino, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), e.path, [e.major, e.minor]));
        break;
    }
  });
  parts.push(record(0, 0, new Uint8Array(0), 'TRAILER!!!'));
  return Buffer.concat(parts);
}
