/**
 * The full-size fuzz proof of issue 11: >= 100,000 generated hostile bodies per endpoint
 * (test/helpers/hostile-bodies.ts: deep nesting, huge strings, wrong types, extra keys,
 * __proto__/constructor, out-of-range numbers, unicode, truncated JSON, duplicate keys)
 * into every key service endpoint through the real request handler (KeyServiceServer.answer,
 * production wiring, audit log on /dev/shm when it exists) and into the recovery endpoint's
 * request layer. Every answer must be a typed 4xx (never a 5xx, never a throw), and no refusal
 * may cost more than 1 KiB of audit log. npm test runs the same campaigns at 2,000 per
 * endpoint (test/integration/keyservice-fuzz.test.ts).
 *
 *   node dist/bench/fuzz-requests.js [--runs N] [--seed S]     (npm run bench fuzz-requests)
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { campaign, summary } from '../test/helpers/fuzz-campaign.js';
import { keyServiceTargets, recoveryRequestTargets } from '../test/helpers/fuzz-targets.js';
import { startInProcessTarget } from '../test/helpers/keyservice-target.js';
import { ROUTES } from '../protocol/messages.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '100000' }, seed: { type: 'string' } } });
const runs = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
process.stdout.write(`fuzz-requests: ${runs} hostile bodies per endpoint, seed ${seed}\n`);

const target = await startInProcessTarget({ tmp: existsSync('/dev/shm') ? '/dev/shm' : undefined });
let total = 0;
let ms = 0;
try {
  for (const t of [...keyServiceTargets(target.svc), ...recoveryRequestTargets()]) {
    const r = await campaign(t, runs, { seed });
    total += r.runs;
    ms += r.ms;
    process.stdout.write(summary(r) + '\n');
  }
  const after = await target.svc.answer(ROUTES.nonce, '{}', '192.0.2.1');
  if (after.status !== 200) throw new Error(`the service no longer answers a good request: ${JSON.stringify(after)}`);
  process.stdout.write(`fuzz-requests: ${total} bodies in ${(ms / 1000).toFixed(1)} s, every answer a typed 4xx (a 200 only for a valid nonce request or a recovery body that passed its schema); a good nonce request still answers 200\n`);
} finally {
  await target.stop();
}
