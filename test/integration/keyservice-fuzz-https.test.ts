/**
 * Issue 11's fuzz proof over the wire: generated hostile bodies (test/helpers/hostile-bodies.ts,
 * huge strings past the 512 KiB body limit included) into every endpoint of a real
 * `sextant keyservice` process over HTTPS. Every answer is a typed 4xx, no refusal costs more
 * than 1 KiB of audit log, and at the end the same process (same PID) answers a good request.
 */
import test from 'ava';
import { campaign, summary, type FuzzTarget } from '../helpers/fuzz-campaign.js';
import { MAX_AUDIT_BYTES_PER_REFUSAL, validNonceBody } from '../helpers/fuzz-targets.js';
import { KEYSERVICE_SAMPLES } from '../helpers/protocol-samples.js';
import { RawHttps } from '../helpers/raw-https.js';
import { startKeyServiceTarget } from '../helpers/keyservice-target.js';
import { ROUTES } from '../../protocol/messages.js';
import { assertNonceResponse } from '../../protocol/validate.js';

const RUNS = 500;
const LIMIT = 512 * 1024;

test('6 endpoints x 500 hostile bodies over HTTPS: typed 4xx only, <= 1 KiB audit per refusal, the same process still serves', async (t) => {
  const target = await startKeyServiceTarget();
  t.teardown(target.stop);
  const http = new RawHttps(target.service.listening);
  t.teardown(() => http.close());
  const pid = target.service.child.pid;
  let audit = await target.auditBytes();
  let cut = 0;
  let total = 0;
  for (const [route, sample] of Object.entries(KEYSERVICE_SAMPLES)) {
    const e: FuzzTarget = {
      route,
      sample,
      send: async (body) => {
        try {
          const a = await http.post(route, body);
          return { status: a.status, body: a.json };
        } catch (err) {
          // Past the limit the service answers 413 and closes without reading the rest: a
          // client still writing may see the reset before the answer. That is the limit working.
          const code = (err as NodeJS.ErrnoException).code;
          if (Buffer.byteLength(body) > LIMIT && (code === 'ECONNRESET' || code === 'EPIPE')) {
            cut++;
            return { status: 413, body: { ok: false, code: 'REQUEST_TOO_LARGE' } };
          }
          throw err;
        }
      },
      mayAccept: (body) => route === ROUTES.nonce && validNonceBody(body),
      after: async () => {
        if (!target.alive()) return 'the key service process exited';
        const now = await target.auditBytes();
        const grew = now - audit;
        audit = now;
        return grew > MAX_AUDIT_BYTES_PER_REFUSAL ? `one refusal wrote ${grew} audit bytes` : undefined;
      },
    };
    const r = await campaign(e, RUNS, { maxString: 600 * 1024 });
    total += r.runs;
    t.log(summary(r));
  }
  t.log(`${total} bodies; ${cut} connections cut at the body limit before the 413 was read`);
  t.true(target.alive());
  t.is(target.service.child.pid, pid);
  const good = await http.post(ROUTES.nonce, '{}');
  t.is(good.status, 200);
  assertNonceResponse(good.json);
});
