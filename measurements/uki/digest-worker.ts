/** Worker side of runJobsParallel: hashes its share of the jobs out of the shared file buffer. */
import { parentPort } from 'node:worker_threads';
import { runJob, type WireRequest } from './digest-jobs.js';

parentPort?.once('message', (req: WireRequest) => {
  const view = new Uint8Array(req.shared);
  const digests = req.jobs.map((j) =>
    runJob(req.alg, {
      checkpoints: j.checkpoints,
      pieces: j.pieces.map((p) => (p instanceof Uint8Array ? p : view.subarray(p.off, p.off + p.len))),
    }).map((d) => new Uint8Array(d)),
  );
  parentPort?.postMessage(digests);
});
