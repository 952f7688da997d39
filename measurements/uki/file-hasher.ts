import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { parsePe } from '../pe/parse.js';
import type { DigestJob } from './digest-jobs.js';
import { hashClaimedJobs, hashJobsInOnePass, type ClaimTable, type FileJob, type WirePiece } from './stream-lane.js';

/**
 * Reading a UKI for its prediction without holding it in memory: the headers and small sections
 * are read where they lie (all the plan needs), then one pass over the file through a small
 * reused buffer feeds every digest (stream-lane.ts); with a worker, both threads claim digests
 * and each reads its own ranges. Fresh memory for a whole 70 MiB file costs more in page faults
 * than reading the file does, while a 128 KiB buffer stays in the L2 cache (stream-lane.ts).
 */

/** Everything the plan reads directly must lie in ranges of at most this size (or named below). */
const SMALL = 1 << 20;
/** Sections whose bytes the plan reads whatever their size (text, cpio sources, .sdmagic). */
const READ_WHOLE = new Set(['.osrel', '.cmdline', '.uname', '.sdmagic', '.sbat', '.pcrsig', '.pcrpkey', '.profile']);

/** Opens a regular file for one pass; FILE_NOT_FOUND / IO_FAILED as the CLI reports them. */
export function openRegularFile(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${file}: no such file`, cause });
    throw new SextantError({ code: 'IO_FAILED', message: `cannot open ${file}: ${(cause as Error).message}`, cause });
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${file} is not a regular file` });
  }
  return { fd, size: st.size };
}

/** Reads file bytes [from, to) into `into` at `at` (default: the same offset). */
export function readRange(fd: number, into: Uint8Array, from: number, to: number, file: string, at = from): void {
  for (let off = from; off < to; ) {
    let n: number;
    try {
      n = readSync(fd, into, at + off - from, to - off, off);
    } catch (cause) {
      throw new SextantError({ code: 'IO_FAILED', message: `cannot read ${file}: ${(cause as Error).message}`, cause });
    }
    if (n === 0) throw new SextantError({ code: 'IO_FAILED', message: `${file} changed while being read` });
    off += n;
  }
}

/**
 * A file-sized view holding only what planning a UKI reads: the headers, the COFF string table,
 * every small or textual section and the head of .linux (the kernel's PE headers); the rest
 * stays untouched zero pages. Undefined when the UKI does not fit that shape (then the caller
 * reads it whole, and parsing reports any defect exactly as for bytes in memory).
 */
export function readPlanView(fd: number, size: number, file: string): Uint8Array | undefined {
  const view = new Uint8Array(size);
  const read = (from: number, to: number): void => readRange(fd, view, Math.max(0, from), Math.min(size, to), file);
  read(0, SMALL);
  let pe;
  try {
    pe = parsePe(view);
  } catch {
    return undefined;
  }
  if (pe.sizeOfHeaders > SMALL) return undefined;
  const symbols = new DataView(view.buffer).getUint32(pe.timeDateStampOffset + 4, true); // COFF PointerToSymbolTable
  if (symbols !== 0) read(symbols, symbols + 4 * SMALL); // symbol + string table: long section names
  for (const s of pe.sections) {
    const used = Math.min(s.virtualSize, s.sizeOfRawData);
    if (used <= SMALL || READ_WHOLE.has(s.name)) read(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData);
    else if (s.virtualSize > s.sizeOfRawData) return undefined; // zero-filled tail: the plan copies the section
    else if (s.name === '.linux') read(s.pointerToRawData, s.pointerToRawData + SMALL);
  }
  return view;
}

/** The plan's jobs as file ranges and literals. */
export function fileJobs(jobs: DigestJob[], view: Uint8Array): FileJob[] {
  return jobs.map((j) => ({
    pieces: j.pieces.map((p): WirePiece => (p.buffer === view.buffer ? { off: p.byteOffset, len: p.byteLength } : p)),
    checkpoints: j.checkpoints,
  }));
}

/** A worker for hashFileJobs, started before the file is planned so its start-up overlaps. */
export function startDigestWorker(): Worker {
  const w = new Worker(new URL('./digest-worker.js', import.meta.url));
  w.unref(); // a worker that was not needed must not keep the process alive
  return w;
}

const jobBytes = (j: FileJob): number => j.pieces.reduce((n, p) => n + (p instanceof Uint8Array ? p.length : p.len), 0);

/**
 * Every job's digests, in job order. This thread and the worker (when given) claim jobs from a
 * shared table, biggest first: this thread starts at once, the worker joins when it is up. If
 * this thread claimed everything, the worker is not waited for.
 */
export async function hashFileJobs(fd: number, size: number, alg: HashAlg, jobs: FileJob[], worker?: Worker): Promise<Uint8Array[][]> {
  const order = jobs.map((j, i) => ({ i, n: jobBytes(j) })).sort((a, b) => b.n - a.n).map((x) => x.i);
  const table: ClaimTable = { alg, fd, jobs: order.map((i) => jobs[i]), owners: new SharedArrayBuffer(4 * jobs.length) };
  let remote: Promise<[number, Uint8Array[]][]> | undefined;
  if (worker) {
    remote = new Promise((resolve, reject) => {
      worker.once('message', (m: { digests?: [number, Uint8Array[]][]; error?: string }) =>
        m.digests ? resolve(m.digests) : reject(new SextantError({ code: 'IO_FAILED', message: `digest worker: ${m.error}` })),
      );
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new SextantError({ code: 'INTERNAL', message: `digest worker exited with ${code}` })));
    });
    remote.catch(() => undefined); // awaited below, if the worker claimed anything
    worker.postMessage(table);
  }
  let mine: Map<number, Uint8Array[]>;
  try {
    if (!worker) {
      const once = await hashJobsInOnePass(alg, fd, size, jobs);
      if (once) return once;
    }
    mine = hashClaimedJobs(table, 1);
  } catch (cause) {
    throw new SextantError({ code: 'IO_FAILED', message: `cannot read the file: ${(cause as Error).message}`, cause });
  }
  const byOrder = new Array<Uint8Array[]>(jobs.length);
  for (const [k, d] of mine) byOrder[k] = d;
  if (remote && mine.size < jobs.length) for (const [k, d] of await remote) byOrder[k] = d;
  const out = new Array<Uint8Array[]>(jobs.length);
  order.forEach((i, k) => (out[i] = byOrder[k]));
  return out;
}
