import test from 'ava';
import { SextantError } from '../../../lib/errors.js';
import { attestUntilAnswered, releaseKey, retryDelay } from '../../../agent/run/key-release.js';
import type { AttestResult } from '../../../agent/attest/client.js';
import type { RecoveredSecrets, RecoverySource } from '../../../agent/run/recovery-source.js';
import { sleep } from '../../../agent/attest/backoff.js';

const answer = (byte: number): AttestResult => ({ diskKey: Buffer.alloc(32, byte), clusterId: 'c1', warnings: [], attempts: 1, endpoint: 'https://127.0.0.1:1' });
const unreachable = () => new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: 'connect ECONNREFUSED' });

/** A recovery endpoint stub: resolves when the test says so, records close(). */
function stubRecovery(): RecoverySource & { deliver(s: RecoveredSecrets): void; failWith(e: Error): void; closed: number } {
  let deliver!: (s: RecoveredSecrets) => void;
  let failWith!: (e: Error) => void;
  const secrets = new Promise<RecoveredSecrets>((res, rej) => {
    deliver = res;
    failWith = rej;
  });
  const r = { secrets, closed: 0, deliver, failWith, close: async () => void r.closed++ };
  return r;
}

test('retry delays: jittered in [3/4, 1] of the ceiling, each at least 1.5x the last until retry.maxMs', (t) => {
  for (const random of [() => 0, () => 0.999999]) {
    const ds = Array.from({ length: 12 }, (_, i) => retryDelay(i, 1000, 60_000, random));
    for (const [i, d] of ds.entries()) {
      const c = Math.min(60_000, 1000 * 2 ** i);
      t.true(d >= (c * 3) / 4 && d <= c, `attempt ${i}: ${d} in [${(c * 3) / 4}, ${c}]`);
    }
    t.true(ds.every((d) => d > 0), 'never a zero wait (no spinning)');
    for (let i = 1; i < 6; i++) t.true(ds[i] >= ds[i - 1] * 1.5, `growing: ${ds.join(' ')}`);
  }
  t.is(retryDelay(1000, 1000, 60_000, () => 0.5), 52_500, 'huge attempt numbers stay capped');
});

test('attestUntilAnswered: retries transport trouble, stops at a refusal, stops when aborted', async (t) => {
  const waits: number[] = [];
  const clock = { now: () => new Date(), sleep: async (ms: number) => void waits.push(ms) };
  let n = 0;
  const r = await attestUntilAnswered(async () => (++n < 4 ? Promise.reject(unreachable()) : answer(1)), { initialMs: 100, maxMs: 1000, clock, random: () => 0 });
  t.is(r.attempts, 4);
  t.deepEqual(waits, [75, 150, 300]);
  await t.throwsAsync(attestUntilAnswered(async () => Promise.reject(new SextantError({ code: 'MEASUREMENTS_MISMATCH', message: 'no' })), { initialMs: 1, maxMs: 1, clock, random: () => 0 }), { code: 'MEASUREMENTS_MISMATCH' });
  const ac = new AbortController();
  const p = attestUntilAnswered(async () => Promise.reject(unreachable()), { initialMs: 10_000, maxMs: 10_000, clock: { now: () => new Date(), sleep }, random: () => 0, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  const t0 = Date.now();
  await t.throwsAsync(p);
  t.true(Date.now() - t0 < 5000, 'the abort cuts the wait short');
});

test('race: the recovery endpoint delivers first -> it wins, the key service loop is aborted, the endpoint closed', async (t) => {
  const rec = stubRecovery();
  let attempts = 0;
  let sawAbort = false;
  const p = releaseKey({
    recovery: () => rec,
    keyservice: (signal) =>
      attestUntilAnswered(
        async () => {
          attempts++;
          throw unreachable();
        },
        { initialMs: 5, maxMs: 5, clock: { now: () => new Date(), sleep }, random: () => 0, signal, onRetry: () => void (sawAbort = signal.aborted) },
      ),
  });
  await new Promise((r) => setTimeout(r, 40));
  rec.deliver({ diskKey: Buffer.alloc(32, 7), clusterId: 'c-rec' });
  const w = await p;
  t.like(w, { source: 'recovery', clusterId: 'c-rec' });
  t.true(w.diskKey.equals(Buffer.alloc(32, 7)));
  t.is(rec.closed, 1);
  const after = attempts;
  await new Promise((r) => setTimeout(r, 40));
  t.is(attempts, after, 'no key service attempt after the recovery won');
  t.false(sawAbort);
});

test('race: the key service answers first -> it wins, the endpoint is closed, a late recovery key is wiped', async (t) => {
  const rec = stubRecovery();
  const w = await releaseKey({ recovery: () => rec, keyservice: async () => answer(9) });
  t.like(w, { source: 'keyservice', clusterId: 'c1' });
  t.is(rec.closed, 1);
  const late = Buffer.alloc(32, 5);
  rec.deliver({ diskKey: late, clusterId: 'x' });
  await new Promise((r) => setImmediate(r));
  t.true(late.equals(Buffer.alloc(32)), 'zeroized unread');
});

test('race: a key service refusal does not end the wait while recovery can still deliver', async (t) => {
  const rec = stubRecovery();
  const p = releaseKey({ recovery: () => rec, keyservice: async () => Promise.reject(new SextantError({ code: 'MEASUREMENTS_MISMATCH', message: 'refused' })) });
  await new Promise((r) => setTimeout(r, 10));
  rec.deliver({ diskKey: Buffer.alloc(32, 3), clusterId: 'c1' });
  t.like(await p, { source: 'recovery' });
});

test('race: both fail -> the key service error is reported, the endpoint closed', async (t) => {
  const rec = stubRecovery();
  rec.failWith(new Error('port in use'));
  await t.throwsAsync(releaseKey({ recovery: () => rec, keyservice: async () => Promise.reject(new SextantError({ code: 'MEASUREMENTS_MISMATCH', message: 'refused' })) }), { code: 'MEASUREMENTS_MISMATCH' });
  t.is(rec.closed, 1);
});
