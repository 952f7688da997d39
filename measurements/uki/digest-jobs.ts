import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';

/**
 * One hash stream over `pieces`, read out at each checkpoint (a count of pieces). A stream
 * with two checkpoints hashes a shared prefix once: e.g. the .initrd section (PCR 11) and the
 * same bytes followed by the stub's cpio archives (PCR 9).
 */
export interface DigestJob {
  pieces: Uint8Array[];
  checkpoints: number[];
}

function jobSize(j: DigestJob): number {
  return j.pieces.reduce((n, p) => n + p.length, 0);
}

/** Runs one job: the digests at its checkpoints, in order. */
export function runJob(alg: HashAlg, job: DigestJob): Buffer[] {
  const h = createHash(alg);
  const out: Buffer[] = [];
  let done = 0;
  job.checkpoints.forEach((cp, i) => {
    for (; done < cp; done++) h.update(job.pieces[done]);
    out.push(i === job.checkpoints.length - 1 ? h.digest() : h.copy().digest());
  });
  return out;
}

export function runJobsSync(alg: HashAlg, jobs: DigestJob[]): Buffer[][] {
  return jobs.map((j) => runJob(alg, j));
}

/** A piece as sent to the worker: a window on the shared file buffer, or (small) copied bytes. */
export type WirePiece = { off: number; len: number } | Uint8Array;
export interface WireRequest {
  alg: HashAlg;
  shared: SharedArrayBuffer;
  jobs: { pieces: WirePiece[]; checkpoints: number[] }[];
}

/** Below this many bytes in total a second thread costs more (its start-up) than it saves. */
export const PARALLEL_THRESHOLD = 32 << 20;

/**
 * Runs the jobs on two lanes, this thread and one worker thread, both hashing straight out of
 * `shared` (the file read into a SharedArrayBuffer, so nothing is copied). Jobs go to the
 * lane with less work, biggest first. Falls back to one lane for small inputs.
 */
export async function runJobsParallel(alg: HashAlg, jobs: DigestJob[], shared: SharedArrayBuffer): Promise<Buffer[][]> {
  const total = jobs.reduce((n, j) => n + jobSize(j), 0);
  if (total < PARALLEL_THRESHOLD || jobs.length < 2) return runJobsSync(alg, jobs);
  const order = jobs.map((j, i) => ({ i, size: jobSize(j) })).sort((a, b) => b.size - a.size);
  const load = [0, 0];
  const lane = new Array<number>(jobs.length);
  for (const { i, size } of order) {
    const l = load[0] <= load[1] ? 0 : 1;
    lane[i] = l;
    load[l] += size;
  }
  const remote = jobs.map((j, i) => ({ j, i })).filter(({ i }) => lane[i] === 1);
  const request: WireRequest = {
    alg,
    shared,
    jobs: remote.map(({ j }) => ({
      checkpoints: j.checkpoints,
      pieces: j.pieces.map((p) => (p.buffer === shared ? { off: p.byteOffset, len: p.byteLength } : p.slice())),
    })),
  };
  const worker = new Worker(new URL('./digest-worker.js', import.meta.url));
  try {
    const remoteDone = new Promise<Uint8Array[][]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new SextantError({ code: 'INTERNAL', message: `digest worker exited with ${code}` })));
    });
    worker.postMessage(request);
    const out: Buffer[][] = new Array(jobs.length);
    for (let i = 0; i < jobs.length; i++) if (lane[i] === 0) out[i] = runJob(alg, jobs[i]);
    const fromWorker = await remoteDone;
    remote.forEach(({ i }, k) => (out[i] = fromWorker[k].map((d) => Buffer.from(d))));
    return out;
  } finally {
    await worker.terminate();
  }
}
