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
