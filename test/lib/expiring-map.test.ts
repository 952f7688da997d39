import test from 'ava';
import { ExpiringMap } from '../../lib/expiring-map.js';

function clocked() {
  let now = 1_000_000;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

test('an entry lives its TTL, then is gone and dropped (onDrop sees it)', (t) => {
  const c = clocked();
  const dropped: string[] = [];
  const m = new ExpiringMap<string>({ ttlMs: 1000, maxEntries: 10, overflow: 'refuse', clock: c.clock, onDrop: (v) => dropped.push(v) });
  t.is(m.set('a', 'A'), 1_001_000);
  c.advance(1000);
  t.is(m.get('a'), 'A');
  c.advance(1);
  t.is(m.get('a'), undefined);
  t.deepEqual(dropped, ['A']);
  t.is(m.size, 0);
});

test('take is single use and does not call onDrop (the taker owns the value)', (t) => {
  const dropped: string[] = [];
  const m = new ExpiringMap<string>({ ttlMs: 1000, maxEntries: 10, overflow: 'refuse', onDrop: (v) => dropped.push(v) });
  m.set('a', 'A');
  t.is(m.take('a'), 'A');
  t.is(m.take('a'), undefined);
  t.deepEqual(dropped, []);
});

test('refuse: a full map refuses a new entry and keeps the ones in progress; expired ones make room', (t) => {
  const c = clocked();
  const m = new ExpiringMap<number>({ ttlMs: 1000, maxEntries: 2, overflow: 'refuse', clock: c.clock });
  m.set('a', 1);
  c.advance(10);
  m.set('b', 2);
  t.is(m.set('c', 3), false);
  t.is(m.get('a'), 1);
  t.is(m.get('b'), 2);
  c.advance(995); // a expired, b not
  t.not(m.set('c', 3), false);
  t.is(m.get('a'), undefined);
  t.is(m.get('b'), 2);
});

test('evict-oldest: a full map drops the oldest entry for the new one', (t) => {
  const dropped: number[] = [];
  const m = new ExpiringMap<number>({ ttlMs: 1000, maxEntries: 2, overflow: 'evict-oldest', onDrop: (v) => dropped.push(v) });
  m.set('a', 1);
  m.set('b', 2);
  t.not(m.set('c', 3), false);
  t.deepEqual(dropped, [1]);
  t.is(m.get('a'), undefined);
  t.is(m.get('c'), 3);
});

test('the sweep on set stops at the first live entry: 100,000 live entries cost no scan', (t) => {
  const m = new ExpiringMap<number>({ ttlMs: 60_000, maxEntries: 200_000, overflow: 'refuse' });
  for (let i = 0; i < 100_000; i++) m.set(String(i), i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) m.set('x' + i, i);
  const perSetUs = Number(process.hrtime.bigint() - t0) / 1000 / 1000;
  // A full scan of 100,000 entries is ~1 ms; the prefix sweep is a few microseconds.
  t.true(perSetUs < 100, `${perSetUs} us per set`);
  t.is(m.size, 101_000);
});

test('clear drops every entry through onDrop', (t) => {
  const dropped: number[] = [];
  const m = new ExpiringMap<number>({ ttlMs: 1000, maxEntries: 10, overflow: 'refuse', onDrop: (v) => dropped.push(v) });
  m.set('a', 1);
  m.set('b', 2);
  m.clear();
  t.deepEqual(dropped, [1, 2]);
  t.is(m.size, 0);
});
