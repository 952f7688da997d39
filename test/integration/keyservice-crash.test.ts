/**
 * The crash campaign in CI size: kill -9 of the real `sextant keyservice` process at random
 * moments (also during its start) under real swtpm attestations, 10 times
 * (scripts/keyservice-crash-campaign.mjs runs >= 50). Every restart comes up, `sextant
 * keyservice audit verify` passes after every kill, every release a client saw has its
 * record, and a disk UUID's key never changes.
 */
import test from 'ava';
import { runCrashCampaign } from '../helpers/crash-campaign.js';

const KILLS = Number(process.env.SEXTANT_CRASH_KILLS ?? 10);

test('kill -9 under attestation load, 10 times: every restart comes up, the log verifies, every seen release is recorded, keys never change', async (t) => {
  t.timeout(600_000);
  const r = await runCrashCampaign({ kills: KILLS, minReleases: 2 * KILLS, log: (l) => t.log(l) });
  t.log(JSON.stringify(r));
  t.deepEqual(r.failures, []);
  t.is(r.kills, KILLS);
  t.is(r.restartsOk, r.restarts);
  t.is(r.verifyOk, r.verifyRuns);
  t.is(r.verifyRuns, KILLS + 1);
  t.true(r.releasesSeen >= 2 * KILLS, `${r.releasesSeen} releases seen`);
  t.is(r.releasesMissing, 0);
  t.is(r.keysChanged, 0);
  // Every torn tail (injected after a kill, or left by one) was cut and audited on the next start.
  t.true(r.tailCuts >= r.tornInjected, `${r.tailCuts} cuts, ${r.tornInjected} injected`);
});
