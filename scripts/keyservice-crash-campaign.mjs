#!/usr/bin/env node
// kill -9 campaign against the real `sextant keyservice` (see test/helpers/crash-campaign.ts).
// Usage: npm run build && node scripts/keyservice-crash-campaign.mjs [--etcd] [KILLS=50] [SEED]
// --etcd: against the etcd store, on a real 3-member etcd cluster started on loopback (docs/ha.md).
// Prints one JSON line with the figures; exits 1 on any failure.
import { runCrashCampaign } from '../dist/test/helpers/crash-campaign.js';
import { startEtcdCluster } from '../dist/test/helpers/etcd-cluster.js';

const args = process.argv.slice(2);
const withEtcd = args[0] === '--etcd';
if (withEtcd) args.shift();
const kills = Number(args[0] ?? 50);
const seed = args[1] === undefined ? undefined : Number(args[1]);
const etcd = withEtcd ? await startEtcdCluster(3) : undefined;
let r;
try {
  r = await runCrashCampaign({ kills, seed, minReleases: 2 * kills, etcdEndpoints: etcd?.endpoints, log: (l) => process.stderr.write(l + '\n') });
} finally {
  await etcd?.stop();
}
process.stdout.write(JSON.stringify(r) + '\n');
process.exit(r.failures.length === 0 && r.restartsOk === r.restarts && r.verifyOk === r.verifyRuns && r.releasesMissing === 0 && r.keysChanged === 0 ? 0 : 1);
