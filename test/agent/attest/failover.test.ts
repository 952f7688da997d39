import test from 'ava';
import { SextantError, type SextantErrorCode } from '../../../lib/errors.js';
import { Endpoints } from '../../../agent/attest/failover.js';

const A = { url: 'https://127.0.0.1:1001', fingerprint: 'sha256:' + 'ab'.repeat(32) };
const B = { url: 'https://127.0.0.1:1002', fingerprint: A.fingerprint };
const C = { url: 'https://127.0.0.1:1003', fingerprint: A.fingerprint };
const error = (code: SextantErrorCode) => new SextantError({ code, message: code });

/** A service per URL: each call takes the next scripted outcome (a code fails, 'ok' answers). */
function services(script: Record<string, (SextantErrorCode | 'ok')[]>) {
  const calls: string[] = [];
  const f = async (e: { url: string }) => {
    calls.push(e.url);
    const next = script[e.url].shift() ?? 'ok';
    if (next !== 'ok') throw error(next);
    return `answer from ${e.url}`;
  };
  return { calls, f };
}

test('a round moves on at once past endpoints that are down or busy, and stays with the one that answered', async (t) => {
  const eps = new Endpoints([A, B, C]);
  const s = services({ [A.url]: ['KEYSERVICE_UNREACHABLE'], [B.url]: ['RATE_LIMITED'], [C.url]: [] });
  const notes: string[] = [];
  const r = await eps.round(s.f, (from, to, e) => notes.push(`${from.url} -> ${to.url} (${(e as SextantError).code})`));
  t.is(r.value, `answer from ${C.url}`);
  t.is(r.endpoint, C);
  t.deepEqual(notes, [`${A.url} -> ${B.url} (KEYSERVICE_UNREACHABLE)`, `${B.url} -> ${C.url} (RATE_LIMITED)`]);
  await eps.round(s.f);
  t.deepEqual(s.calls, [A.url, B.url, C.url, C.url], 'the next round starts at the endpoint that answered');
});

test('a refusal is final: no other endpoint is asked', async (t) => {
  const eps = new Endpoints([A, B]);
  const s = services({ [A.url]: ['MEASUREMENTS_MISMATCH'], [B.url]: [] });
  await t.throwsAsync(eps.round(s.f), { code: 'MEASUREMENTS_MISMATCH' });
  t.deepEqual(s.calls, [A.url]);
});

test('every endpoint down: the last error is thrown (for the caller\'s backoff) and the next round starts where this one did', async (t) => {
  const eps = new Endpoints([A, B]);
  const s = services({ [A.url]: ['KEYSERVICE_UNREACHABLE', 'KEYSERVICE_UNREACHABLE'], [B.url]: ['TIMEOUT'] });
  await t.throwsAsync(eps.round(s.f), { code: 'TIMEOUT' });
  t.is(eps.current, A);
  const r = await eps.round(s.f);
  t.is(r.endpoint, B);
  t.deepEqual(s.calls, [A.url, B.url, A.url, B.url]);
});

test('no endpoint at all is refused', (t) => {
  t.throws(() => new Endpoints([]), { code: 'INVALID_ARGUMENT' });
});
