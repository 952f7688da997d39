/**
 * Digest jobs hashed straight from a file: each job reads its ranges in order through one small
 * reused buffer (which stays in cache, unlike a fresh buffer for the whole file), and the jobs
 * are shared out between threads by claiming them one by one from a shared table, biggest
 * first, so a thread that starts late or is descheduled never holds the others up. Used on both
 * threads of precomputeUkiFile; imports nothing of sextant's but lib/errors.ts, which imports
 * nothing (the worker starts faster).
 */
import { createHash, type Hash } from 'node:crypto';
import { read, readSync } from 'node:fs';
import { fail } from '../../lib/errors.js';

/** A file range, or bytes that are not in the file (a generated cpio, zero padding). */
export type WirePiece = { off: number; len: number } | Uint8Array;
export interface FileJob {
  pieces: WirePiece[];
  /** Digests are read out after this many pieces, in order (see DigestJob). */
  checkpoints: number[];
}

/** What both threads share: the jobs (biggest first) and, per job, who claimed it (0: nobody). */
export interface ClaimTable {
  alg: string;
  fd: number;
  jobs: FileJob[];
  /** Int32 per job: 0 unclaimed, else the claiming thread's id. */
  owners: SharedArrayBuffer;
}

/**
 * The read buffer. Small enough to stay in the core's L2 cache (512 KiB on the dev machine's
 * EPYC): reading 68 MiB through it cost 6-9 ms of CPU with 32-128 KiB against 29 ms with 256 KiB
 * or 2 MiB (the copy out of the page cache then goes to L3), and the second digest over the same
 * chunk (the .initrd, .linux) reads it from L2 too. 128 KiB: 544 reads for 68 MiB.
 */
const BUFFER = 128 << 10;
/**
 * The one-pass chunk, read on the thread pool while the previous one is hashed: a round trip
 * costs this thread some CPU, and the chunk arrives from the other core's cache anyway. At load
 * 18 on 2 cores, 512 KiB took as much CPU as the synchronous 128 KiB reads and 0.65x the wall
 * time; 128 KiB took 1.2x the CPU, 2 MiB gained no wall time.
 */
const PASS_CHUNK = 512 << 10;

/** Claims and hashes jobs until none is left; returns the digests of the jobs this thread did. */
export function hashClaimedJobs(table: ClaimTable, me: number): Map<number, Uint8Array[]> {
  const owners = new Int32Array(table.owners);
  const buf = new Uint8Array(BUFFER);
  const done = new Map<number, Uint8Array[]>();
  for (let i = 0; i < table.jobs.length; i++) {
    if (Atomics.compareExchange(owners, i, 0, me) !== 0) continue;
    done.set(i, hashFileJob(table.alg, table.fd, table.jobs[i], buf));
  }
  return done;
}

function hashFileJob(alg: string, fd: number, job: FileJob, buf: Uint8Array): Uint8Array[] {
  const h = createHash(alg);
  const out: Uint8Array[] = [];
  let done = 0;
  job.checkpoints.forEach((cp, i) => {
    for (; done < cp; done++) {
      const p = job.pieces[done];
      if (p instanceof Uint8Array) {
        h.update(p);
        continue;
      }
      for (let at = p.off, end = p.off + p.len; at < end; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
        if (n === 0) fail('IO_FAILED', 'file changed while being read');
        h.update(n === buf.length ? buf : buf.subarray(0, n));
        at += n;
      }
    }
    out.push(new Uint8Array(i === job.checkpoints.length - 1 ? h.digest() : h.copy().digest()));
  });
  return out;
}

interface Cursor {
  job: FileJob;
  h: Hash;
  piece: number;
  at: number;
  out: Uint8Array[];
}

/** Feeds a job the part of the chunk (file bytes [start, end) in buf) its ranges cover. */
function feedChunk(c: Cursor, buf: Uint8Array, start: number, end: number, settle: (c: Cursor) => void): void {
  for (;;) {
    const p = c.job.pieces[c.piece];
    if (p === undefined || p instanceof Uint8Array) return;
    const from = p.off + c.at;
    if (from >= end) return;
    const to = Math.min(p.off + p.len, end);
    c.h.update(buf.subarray(from - start, to - start));
    c.at += to - from;
    if (c.at < p.len) return;
    c.piece++;
    c.at = 0;
    settle(c);
  }
}

/**
 * All jobs in one front-to-back pass over the file (one read of each byte), for a single
 * thread: each job takes the part of every chunk its ranges cover. The next chunk is read on
 * libuv's thread pool while this thread hashes the current one (two buffers), so the copies out
 * of the page cache run beside the hashing. Needs every job's file ranges in increasing order
 * (Authenticode ranges and sections are); undefined otherwise.
 */
export async function hashJobsInOnePass(alg: string, fd: number, size: number, jobs: FileJob[]): Promise<Uint8Array[][] | undefined> {
  for (const j of jobs) {
    let end = 0;
    for (const p of j.pieces) {
      if (p instanceof Uint8Array) continue;
      if (p.off < end) return undefined;
      end = p.off + p.len;
    }
  }
  const cur = jobs.map((job): Cursor => ({ job, h: createHash(alg), piece: 0, at: 0, out: [] }));
  const settle = (c: Cursor): void => {
    for (;;) {
      const cps = c.job.checkpoints;
      while (c.out.length < cps.length && cps[c.out.length] === c.piece) {
        c.out.push(new Uint8Array(c.out.length === cps.length - 1 ? c.h.digest() : c.h.copy().digest()));
      }
      const p = c.job.pieces[c.piece];
      if (p === undefined || (!(p instanceof Uint8Array) && p.len > 0)) return;
      if (p instanceof Uint8Array) c.h.update(p);
      c.piece++;
    }
  };
  cur.forEach(settle);
  const bufs = [new Uint8Array(PASS_CHUNK), new Uint8Array(PASS_CHUNK)];
  const readAt = (buf: Uint8Array, at: number): Promise<number> =>
    new Promise((resolve, reject) => read(fd, buf, 0, Math.min(PASS_CHUNK, size - at), at, (e, n) => (e ? reject(e) : resolve(n))));
  let k = 0;
  let pending = size > 0 ? readAt(bufs[0], 0) : undefined;
  try {
    for (let start = 0; start < size; ) {
      const n = await pending!;
      if (n === 0) fail('IO_FAILED', 'file changed while being read');
      const buf = bufs[k];
      const end = start + n; // a short read: the next one continues right after it
      k ^= 1;
      pending = end < size ? readAt(bufs[k], end) : undefined;
      for (const c of cur) feedChunk(c, buf, start, end, settle);
      start = end;
    }
  } finally {
    // a read still in flight must finish before the caller closes the file
    await pending?.catch(() => undefined);
  }
  return cur.map((c) => {
    if (c.piece < c.job.pieces.length) fail('IO_FAILED', 'file changed while being read');
    return c.out;
  });
}
