import { createHash } from 'node:crypto';
import type { HashAlg } from '../../lib/bytes.js';

/**
 * One hash stream over `pieces`, read out at each checkpoint (a count of pieces). A stream
 * with two checkpoints hashes a shared prefix once: e.g. the .initrd section (PCR 11) and the
 * same bytes followed by the stub's cpio archives (PCR 9).
 */
export interface DigestJob {
  pieces: Uint8Array[];
  checkpoints: number[];
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

/** Below this many bytes a second thread costs more (its start-up) than it saves. */
export const PARALLEL_THRESHOLD = 32 << 20;
