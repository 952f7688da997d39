import test from 'ava';
import { NonceStore } from '../../keyservice/nonce-store.js';

function clocked() {
  let now = 1_000_000;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

test('a fresh nonce is accepted once, then NONCE_REPLAYED', (t) => {
  const s = new NonceStore();
  const n = s.issue();
  t.is(n.length, 32);
  t.notThrows(() => s.consume(n));
  t.throws(() => s.consume(n), { code: 'NONCE_REPLAYED' } as never);
});

test('a nonce used after its 60 s TTL is NONCE_EXPIRED, and cannot be retried', (t) => {
  const c = clocked();
  const s = new NonceStore({ clock: c.clock });
  const n = s.issue();
  c.advance(60_001);
  t.throws(() => s.consume(n), { code: 'NONCE_EXPIRED' } as never);
  t.throws(() => s.consume(n), { code: 'NONCE_REPLAYED' } as never);
});

test('a nonce never issued is NONCE_UNKNOWN; old entries are forgotten after the grace period', (t) => {
  const c = clocked();
  const s = new NonceStore({ clock: c.clock, graceMs: 1000 });
  t.throws(() => s.consume(Buffer.alloc(32)), { code: 'NONCE_UNKNOWN' } as never);
  s.issue();
  c.advance(62_000);
  s.issue();
  t.is(s.size, 1);
});

test('the store is bounded', (t) => {
  const s = new NonceStore({ maxEntries: 3 });
  s.issue();
  s.issue();
  s.issue();
  t.throws(() => s.issue(), { code: 'RATE_LIMITED' } as never);
});

test('issuing costs the same with 90,000 nonces outstanding as with none (an unauthenticated request must not cost a scan of the store)', (t) => {
  const time = (s: NonceStore) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 5000; i++) s.issue();
    return Number(process.hrtime.bigint() - start);
  };
  const empty = time(new NonceStore({ maxEntries: 200_000 }));
  const full = new NonceStore({ maxEntries: 200_000 });
  for (let i = 0; i < 90_000; i++) full.issue();
  const loaded = time(full);
  t.log(`5,000 issues: ${(empty / 1e6).toFixed(1)} ms empty, ${(loaded / 1e6).toFixed(1)} ms with 90,000 outstanding`);
  // A full scan per issue made this ratio ~300 (19.5 s vs 70 ms for 10,000 issues).
  t.true(loaded / empty < 10, `ratio ${(loaded / empty).toFixed(1)}`);
});
