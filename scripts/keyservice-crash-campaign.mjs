#!/usr/bin/env node
// kill -9 campaign against the real `sextant keyservice` (see test/helpers/crash-campaign.ts).
// Usage: npm run build && node scripts/keyservice-crash-campaign.mjs [KILLS=50] [SEED]
// Prints one JSON line with the figures; exits 1 on any failure.
import { runCrashCampaign } from '../dist/test/helpers/crash-campaign.js';

const kills = Number(process.argv[2] ?? 50);
const seed = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const r = await runCrashCampaign({ kills, seed, minReleases: 2 * kills, log: (l) => process.stderr.write(l + '\n') });
process.stdout.write(JSON.stringify(r) + '\n');
process.exit(r.failures.length === 0 && r.restartsOk === r.restarts && r.verifyOk === r.verifyRuns && r.releasesMissing === 0 && r.keysChanged === 0 ? 0 : 1);
