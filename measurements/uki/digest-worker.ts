/** Worker side of hashFileJobs: claims jobs from the shared table until none is left. */
import { parentPort } from 'node:worker_threads';
import { hashClaimedJobs, type ClaimTable } from './stream-lane.js';

parentPort?.once('message', (table: ClaimTable) => {
  try {
    parentPort?.postMessage({ digests: [...hashClaimedJobs(table, 2)] });
  } catch (e) {
    parentPort?.postMessage({ error: String((e as Error).message ?? e) });
  }
});
