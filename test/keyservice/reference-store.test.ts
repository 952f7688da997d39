import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ReferenceStore } from '../../keyservice/reference-store.js';
import { compareImageVersions } from '../../keyservice/image-version.js';
import { readSignedMeasurements, verifiedMeasurements } from '../../attestation/policy/load-reference.js';
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
    readFile: () => readSignedMeasurements(file, file + '.sig'),
    verify: (s, name) => verifiedMeasurements(s, pub, name),
    rolloutMs: 1000,
    now: () => now,
    onChange: (c) => events.push(`${c.kind} ${c.kind === 'retire' ? c.retired : c.accepted}`),
    onRefused: (_from, e) => events.push(`refused ${(e as { code?: string }).code}`),
  });
  /** A signed file of `version` expecting `pcr4` (its own path, so the watched file stays). */
  const signed = async (version: string, pcr4: string) => {
    const f = path.join(keys.dir, `m-${version}-${pcr4.slice(0, 2)}.json`);
    await writeSignedMeasurements(f, keys.keyPem, { '4': { expected: pcr4, enforced: true } }, version);
    return readSignedMeasurements(f, f + '.sig');
  };
  return { keys, file, store, events, signed, advance: (ms: number) => (now += ms) };
}

const code = (e: unknown) => (e as { code?: string }).code;

test('a re-signed file replaces the set; the old one stays accepted for the rollout window', async (t) => {
  const s = await setup();
  await writeSignedMeasurements(s.file, s.keys.keyPem, { '4': { expected: v('bb'), enforced: true } }, '2.0');
  await s.store.reload();
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('bb'), v('aa')]);
  t.regex(s.events[0], /^load sextant-test-node 2\.0/);
  s.advance(1001);
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('bb')]);
  t.deepEqual(s.store.status().sets.map((x) => `${x.imageVersion} ${x.state}`), ['2.0 current', '1.0 retired']);
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

test('image versions order numerically; an unorderable one is refused MEASUREMENTS_VERSION_INVALID', (t) => {
  t.true(compareImageVersions('1.10.0', '1.9.3') > 0);
  t.is(compareImageVersions('2', '2.0.0'), 0);
  t.is(compareImageVersions('v2.99.0', '2.99'), 0);
  t.true(compareImageVersions('0.1.0', '0.0.9') > 0);
  for (const bad of ['1.2.3-rc1', 'latest', '', '1..2', '1.2.']) t.is(code(t.throws(() => compareImageVersions(bad, '1'))), 'MEASUREMENTS_VERSION_INVALID', bad);
});

test('anti-rollback: older refused MEASUREMENTS_ROLLBACK, same version other content MEASUREMENTS_VERSION_REUSED, nothing changes; --force loads it', async (t) => {
  const s = await setup();
  await s.store.load(await s.signed('2.0', v('bb')), { from: 'admin', overlapMs: 500 });
  const before = s.store.status();
  t.is(code(await s.store.load(await s.signed('1.5', v('cc')), { from: 'admin' }).catch((e: unknown) => e)), 'MEASUREMENTS_ROLLBACK');
  t.is(code(await s.store.load(await s.signed('2.0.0', v('dd')), { from: 'admin' }).catch((e: unknown) => e)), 'MEASUREMENTS_VERSION_REUSED');
  t.is(code(await s.store.load(await s.signed('x.y', v('dd')), { from: 'admin' }).catch((e: unknown) => e)), 'MEASUREMENTS_VERSION_INVALID');
  t.deepEqual(s.store.status(), before);
  // The same file again: accepted, nothing changes.
  t.false((await s.store.load(await s.signed('2.0', v('bb')), { from: 'admin' })).changed);
  const forced = await s.store.load(await s.signed('1.5', v('cc')), { from: 'admin', force: true, overlapMs: 0 });
  t.like(forced.loaded, { imageVersion: '1.5', state: 'current' });
  t.like(forced.previous, { imageVersion: '2.0', state: 'retired' });
  t.is(s.store.status().highWaterVersion, '2.0');
  await rm(s.keys.dir, { recursive: true });
});

test('retire ends an overlap at once; the current set cannot be retired; an unknown version is MEASUREMENTS_VERSION_UNKNOWN', async (t) => {
  const s = await setup();
  await s.store.load(await s.signed('2.0', v('bb')), { from: 'admin', overlapMs: 60_000 });
  t.is(s.store.sets().length, 2);
  t.is(code(await s.store.retire('2.0').catch((e: unknown) => e)), 'INVALID_ARGUMENT');
  t.is(code(await s.store.retire('7').catch((e: unknown) => e)), 'MEASUREMENTS_VERSION_UNKNOWN');
  t.like((await s.store.retire('1.0')).retired, { imageVersion: '1.0', state: 'retired' });
  t.deepEqual(s.store.sets().map((x) => x.pcrs['4'].expected), [v('bb')]);
  await rm(s.keys.dir, { recursive: true });
});

test('a failed commit (store unreachable) changes nothing', async (t) => {
  const s = await setup();
  s.store.setCommit(async () => {
    throw Object.assign(new Error('no quorum'), { code: 'STORE_UNAVAILABLE' });
  });
  t.is(code(await s.store.load(await s.signed('2.0', v('bb')), { from: 'admin' }).catch((e: unknown) => e)), 'STORE_UNAVAILABLE');
  t.deepEqual(s.store.status().sets.map((x) => x.imageVersion), ['1.0']);
  t.is(s.store.status().highWaterVersion, '1.0');
  await rm(s.keys.dir, { recursive: true });
});

test('a published document cannot raise the high-water mark past its verified sets (etcd is not trusted for policy)', async (t) => {
  const s = await setup();
  const doc = s.store.saved();
  // An etcd writer without the signing key: the same verified sets, a made-up high-water mark.
  const forged = { ...doc, highWater: { imageVersion: '99.0', sha256: 'ff'.repeat(32) } };
  await s.store.adopt(forged, { from: 'store' });
  t.is(s.store.status().highWaterVersion, '1.0');
  // So the next real release still loads, instead of being MEASUREMENTS_ROLLBACK.
  const r = await s.store.load(await s.signed('2.0', v('bb')), { from: 'admin' });
  t.is(r.loaded.imageVersion, '2.0');
  t.is(s.store.status().highWaterVersion, '2.0');
  await rm(s.keys.dir, { recursive: true });
});
