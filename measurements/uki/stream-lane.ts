/**
 * Digest jobs hashed straight from a file: each job reads its ranges in order through one small
 * reused buffer (which stays in cache, unlike a fresh buffer for the whole file), and the jobs
 * are shared out between threads by claiming them one by one from a shared table, biggest
 * first, so a thread that starts late or is descheduled never holds the others up. Used on both
 * threads of precomputeUkiFile; imports nothing of sextant's but lib/errors.ts, which imports
 * nothing (the worker starts faster).
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
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

/**
 * All jobs in one front-to-back pass over the file (one read of each byte, one buffer), for a
 * single thread: each job takes the part of every chunk its ranges cover. Needs every job's file
 * ranges in increasing order (Authenticode ranges and sections are); undefined otherwise.
 */
export function hashJobsInOnePass(alg: string, fd: number, size: number, jobs: FileJob[]): Uint8Array[][] | undefined {
  for (const j of jobs) {
    let end = 0;
    for (const p of j.pieces) {
      if (p instanceof Uint8Array) continue;
      if (p.off < end) return undefined;
      end = p.off + p.len;
    }
  }
  const cur = jobs.map((job) => ({ job, h: createHash(alg), piece: 0, at: 0, out: [] as Uint8Array[] }));
  type Cur = (typeof cur)[number];
  const settle = (c: Cur): void => {
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
  const buf = new Uint8Array(BUFFER);
  for (let start = 0; start < size; start += BUFFER) {
    const n = readSync(fd, buf, 0, Math.min(BUFFER, size - start), start);
    if (n === 0) fail('IO_FAILED', 'file changed while being read');
    const end = start + n;
    for (const c of cur) {
      for (;;) {
        const p = c.job.pieces[c.piece];
        if (p === undefined || p instanceof Uint8Array) break;
        const from = p.off + c.at;
        if (from >= end) break;
        const to = Math.min(p.off + p.len, end);
        c.h.update(buf.subarray(from - start, to - start));
        c.at += to - from;
        if (c.at < p.len) break;
        c.piece++;
        c.at = 0;
        settle(c);
      }
    }
    if (n < Math.min(BUFFER, size - start)) start -= BUFFER - n; // short read: continue right after it
  }
  return cur.map((c) => {
    if (c.piece < c.job.pieces.length) fail('IO_FAILED', 'file changed while being read');
    return c.out;
  });
}
