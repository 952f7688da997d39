import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ReferenceStore } from '../../keyservice/reference-store.js';
import { loadReferenceSet } from '../../attestation/policy/load-reference.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';

const v = (b: string) => b.repeat(32);

async function setup() {
  const keys = await measurementsKeys();
  const file = path.join(keys.dir, 'm.json');
  await writeSignedMeasurements(file, keys.keyPem, { '4': { expected: v('aa'), enforced: true } }, '1.0');
  const pub = await readFile(keys.pubPem, 'utf8');
  let now = 0;
  const events: string[] = [];
  const store = await ReferenceStore.open({
    load: () => loadReferenceSet(file, file + '.sig', pub),
    rolloutMs: 1000,
    now: () => now,
    onReload: (r) => events.push(r.ok ? `ok ${r.label}` : `refused ${(r.error as { code?: string }).code}`),
  });
  return { keys, file, store, events, advance: (ms: number) => (now += ms) };
}

test('a re-signed file replaces the set; the old one stays accepted for the rollout window', async (t) => {
  const s = await setup();
  await writeSignedMeasurements(s.file, s.keys.keyPem, { '4': { expected: v('bb'), enforced: true } }, '2.0');
  await s.store.reload();
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('bb'), v('aa')]);
  t.regex(s.events[0], /^ok sextant-test-node 2\.0/);
  s.advance(1001);
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('bb')]);
  await rm(s.keys.dir, { recursive: true });
});

test('a changed file whose signature no longer verifies is refused; the current set stays', async (t) => {
  const s = await setup();
  await writeFile(s.file, (await readFile(s.file, 'utf8')).replace(v('aa'), v('cc')));
  await s.store.reload();
  t.deepEqual(s.events, ['refused SIGNATURE_INVALID']);
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('aa')]);
  await rm(s.keys.dir, { recursive: true });
});

test('watching picks up a change without a restart', async (t) => {
  const s = await setup();
  s.store.watch([s.file, s.file + '.sig'], 50);
  await writeSignedMeasurements(s.file, s.keys.keyPem, { '4': { expected: v('dd'), enforced: true } }, '3.0');
  for (let i = 0; i < 400 && s.store.sets()[0].pcrs['4'].expected !== v('dd'); i++) await new Promise((r) => setTimeout(r, 50));
  s.store.unwatch();
  t.is(s.store.sets()[0].pcrs['4'].expected, v('dd'));
  await rm(s.keys.dir, { recursive: true });
});
