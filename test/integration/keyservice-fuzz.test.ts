/**
 * Issue 11's fuzz proof, npm-test size: 2,000 generated hostile bodies per endpoint into the
 * key service's real request handler (in-process, production wiring) and the recovery
 * endpoint's request layer. Every answer a typed 4xx, no refusal over 1 KiB of audit log,
 * and a good request still answered afterwards. bench/fuzz-requests.ts runs the same
 * campaigns at 100,000 per endpoint; keyservice-fuzz-https*.test.ts over real HTTPS.
 */
import test from 'ava';
import { campaign, summary } from '../helpers/fuzz-campaign.js';
import { keyServiceTargets, recoveryRequestTargets } from '../helpers/fuzz-targets.js';
import { startInProcessTarget } from '../helpers/keyservice-target.js';
import { ROUTES } from '../../protocol/messages.js';
import { assertNonceResponse } from '../../protocol/validate.js';

const RUNS = 2000;

test('every key service endpoint: 2,000 hostile bodies each, all typed 4xx, at most 1 KiB of audit per refusal; a good request still answers', async (t) => {
  const target = await startInProcessTarget();
  t.teardown(target.stop);
  for (const e of keyServiceTargets(target.svc)) {
    const r = await campaign(e, RUNS);
    t.log(summary(r));
    t.is(r.runs, RUNS);
    // The generator reaches past the schema too (a refusal of a well-formed request by the verifier).
    if (e.route !== ROUTES.nonce && e.route !== ROUTES.challenge) t.true(Object.keys(r.codes).some((c) => c !== 'PROTOCOL_INVALID'), `${e.route}: nothing got past the schema`);
  }
  const good = await target.svc.answer(ROUTES.nonce, '{}', '192.0.2.1');
  t.is(good.status, 200);
  assertNonceResponse(good.body);
});

test('every recovery endpoint route: 2,000 hostile bodies each through the bounded parser and its schema, only PROTOCOL_INVALID refusals', async (t) => {
  for (const e of recoveryRequestTargets()) {
    const r = await campaign(e, RUNS);
    t.log(summary(r));
    t.deepEqual(Object.keys(r.codes).filter((c) => c !== '200'), ['PROTOCOL_INVALID']);
  }
});
