/**
 * The state-dir disk-binding store: compare-and-set semantics, a crash at every durable step,
 * kill -9 of a process binding in a loop, and two processes racing for the same new UUIDs.
 */
import test from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { REPO_ROOT } from '../helpers/paths.js';

const ek = () => randomBytes(32).toString('hex');
const STORE_MODULE = path.join(REPO_ROOT, 'dist/keyservice/binding/local-store.js');

async function tmpStore(t: { teardown(f: () => Promise<void>): void }): Promise<{ dir: string; store: LocalBindingStore }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'binding-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return { dir, store: LocalBindingStore.inStateDir(dir) };
}

/** Every file the store holds under its final name parses and names itself (no half-written file). */
async function assertAllRevisionsWhole(t: { true(v: boolean, m?: string): void }, dir: string): Promise<number> {
  const root = path.join(dir, 'disk-bindings');
  let n = 0;
  for (const u of await readdir(root).catch(() => [])) {
    for (const f of await readdir(path.join(root, u))) {
      if (!/^\d{10}\.json$/.test(f)) continue;
      const b = JSON.parse(await readFile(path.join(root, u, f), 'utf8')) as { diskUuid: string; revision: number };
      t.true(b.diskUuid === u && b.revision === Number(f.slice(0, 10)), `${u}/${f}`);
      n++;
    }
  }
  return n;
}

test('first release binds (revision 1); another EK gets the existing binding, not a new one', async (t) => {
  const { store } = await tmpStore(t);
  const uuid = randomUUID();
  const [a, b] = [ek(), ek()];
  t.is(await store.get(uuid), undefined);
  const first = await store.bindIfAbsent(uuid, a, { nodeName: 'worker-1' });
  t.like(first, { created: true, binding: { diskUuid: uuid, revision: 1, ekPublicSha256: a, nodeName: 'worker-1', cause: 'first-release' } });
  const second = await store.bindIfAbsent(uuid, b, { nodeName: 'worker-2' });
  t.like(second, { created: false, binding: { revision: 1, ekPublicSha256: a } });
  t.like(await store.bindIfAbsent(uuid, a, {}), { created: false, binding: { revision: 1, ekPublicSha256: a } });
  t.deepEqual(await store.get(uuid), first.binding);
});

test('rebind is a compare-and-set on the revision; unbind makes the next first release bind anew', async (t) => {
  const { store } = await tmpStore(t);
  const uuid = randomUUID();
  const [a, b, c] = [ek(), ek(), ek()];
  await store.bindIfAbsent(uuid, a, {});
  t.like(await store.rebind(uuid, 1, b, { cause: 'admin-rebind', reason: 'mainboard replaced' }), { revision: 2, ekPublicSha256: b, reason: 'mainboard replaced' });
  // A stale writer (it read revision 1) changes nothing.
  await t.throwsAsync(store.rebind(uuid, 1, c, { cause: 'admin-rebind' }), { code: 'DISK_BINDING_CONFLICT' });
  t.like(await store.get(uuid), { revision: 2, ekPublicSha256: b });
  t.like(await store.rebind(uuid, 2, null, { cause: 'admin-unbind' }), { revision: 3, ekPublicSha256: null });
  t.like(await store.bindIfAbsent(uuid, c, {}), { created: true, binding: { revision: 4, ekPublicSha256: c, cause: 'first-release' } });
  // A UUID never bound: expected revision 0 pre-binds it.
  const fresh = randomUUID();
  t.like(await store.rebind(fresh, 0, a, { cause: 'admin-rebind' }), { revision: 1, ekPublicSha256: a });
  t.deepEqual((await store.list()).map((x) => x.diskUuid), [uuid, fresh].sort());
});

test('UUIDs that are not canonical lowercase (path-like, upper case) and bad EK hashes are refused before any file is touched', async (t) => {
  const { dir, store } = await tmpStore(t);
  for (const bad of ['../../etc', 'C0FFEE00-1234-4ABC-8DEF-0123456789AB', '', 'c0ffee00-1234-4abc-8def-0123456789ab/..']) {
    await t.throwsAsync(store.bindIfAbsent(bad, ek(), {}), { code: 'INVALID_ARGUMENT' }, bad);
    await t.throwsAsync(store.get(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
  await t.throwsAsync(store.bindIfAbsent(randomUUID(), 'AB'.repeat(32), {}), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(store.rebind(randomUUID(), 0, 'x', { cause: 'admin-rebind' }), { code: 'INVALID_ARGUMENT' });
  t.deepEqual(await readdir(dir), []);
});

test('a crash at each durable step: before the link nothing is bound, from the link on the whole binding is; debris never breaks the next release', async (t) => {
  const steps = ['mkdir', 'write-tmp', 'fsync-tmp', 'link'] as const;
  for (const at of steps) {
    const { dir } = await tmpStore(t);
    const uuid = randomUUID();
    const a = ek();
    const crashing = LocalBindingStore.inStateDir(dir, {
      step: (s) => {
        if (s === at) throw new Error(`simulated crash at ${s}`);
      },
    });
    await t.throwsAsync(crashing.bindIfAbsent(uuid, a, {}), undefined, at);
    // The restarted service (a fresh store on the same folder):
    const after = LocalBindingStore.inStateDir(dir);
    const b = ek();
    const r = await after.bindIfAbsent(uuid, b, {});
    // The crash hook fires before its step runs: a crash "at link" means the link never happened.
    t.like(r, { created: true, binding: { revision: 1, ekPublicSha256: b } }, at);
    t.is(await assertAllRevisionsWhole(t, dir), 1, at);
  }
  // A crash after the link and before the folder's fsync: the binding is there once the link is.
  const { dir } = await tmpStore(t);
  const uuid = randomUUID();
  const a = ek();
  const late = LocalBindingStore.inStateDir(dir, {
    step: (s) => {
      if (s === 'fsync-dir') throw new Error('simulated crash after link');
    },
  });
  await t.throwsAsync(late.bindIfAbsent(uuid, a, {}));
  t.like(await LocalBindingStore.inStateDir(dir).bindIfAbsent(uuid, ek(), {}), { created: false, binding: { ekPublicSha256: a } });
  t.true((await readdir(path.join(dir, 'disk-bindings', uuid))).some((f) => f.startsWith('.tmp-')), 'the crashed write left its temporary file');
});

test('a revision file damaged on disk is DISK_BINDING_BROKEN, not "unbound"', async (t) => {
  const { dir, store } = await tmpStore(t);
  const uuid = randomUUID();
  await store.bindIfAbsent(uuid, ek(), {});
  await writeFile(path.join(dir, 'disk-bindings', uuid, '0000000001.json'), '{"diskUuid":');
  await t.throwsAsync(store.get(uuid), { code: 'DISK_BINDING_BROKEN' });
  await t.throwsAsync(store.bindIfAbsent(uuid, ek(), {}), { code: 'DISK_BINDING_BROKEN' });
});

test('64 concurrent first releases of one UUID by different EKs in one process: exactly one wins, all see it', async (t) => {
  const { store } = await tmpStore(t);
  const uuid = randomUUID();
  const eks = Array.from({ length: 64 }, ek);
  const rs = await Promise.all(eks.map((e) => store.bindIfAbsent(uuid, e, {})));
  t.is(rs.filter((r) => r.created).length, 1);
  const winner = rs.find((r) => r.created)!.binding.ekPublicSha256;
  t.true(rs.every((r) => r.binding.ekPublicSha256 === winner && r.binding.revision === 1));
});

/** A process that binds each UUID given on the command line to its EK and prints what it got. */
const RACER = `
import { LocalBindingStore } from ${JSON.stringify(STORE_MODULE)};
const [dir, ek, ...uuids] = process.argv.slice(2);
const store = LocalBindingStore.inStateDir(dir);
for (const u of uuids) {
  const r = await store.bindIfAbsent(u, ek, {});
  process.stdout.write(JSON.stringify({ u, created: r.created, ek: r.binding.ekPublicSha256 }) + '\\n');
}
`;

test('two processes racing for the same 200 new UUIDs: exactly one winner per UUID, and both agree who', async (t) => {
  const { dir } = await tmpStore(t);
  const script = path.join(dir, 'racer.mjs');
  await writeFile(script, RACER);
  const uuids = Array.from({ length: 200 }, () => randomUUID());
  const [a, b] = [ek(), ek()];
  // Opposite orders as well as the same order, so the races happen at both ends.
  const [ra, rb, rc] = await Promise.all([
    execa(process.execPath, [script, dir, a, ...uuids]),
    execa(process.execPath, [script, dir, b, ...uuids]),
    execa(process.execPath, [script, dir, b, ...[...uuids].reverse()]),
  ]);
  const parse = (s: string) => new Map(s.trim().split('\n').map((l) => JSON.parse(l) as { u: string; created: boolean; ek: string }).map((x) => [x.u, x]));
  const [ma, mb, mc] = [parse(ra.stdout), parse(rb.stdout), parse(rc.stdout)];
  let aWon = 0;
  for (const u of uuids) {
    const got = [ma.get(u)!, mb.get(u)!, mc.get(u)!];
    t.is(got.filter((g) => g.created).length, 1, u);
    t.true(got.every((g) => g.ek === got[0].ek), u);
    if (got[0].ek === a) aWon++;
  }
  t.is(await assertAllRevisionsWhole(t, dir), 200);
  t.log(`process A won ${aWon} of 200 UUIDs, the two B processes ${200 - aWon}`);
});

/** Binds fresh UUIDs forever, printing each one only after bindIfAbsent resolved (acknowledged). */
const LOOPER = `
import { randomUUID } from 'node:crypto';
import { LocalBindingStore } from ${JSON.stringify(STORE_MODULE)};
const [dir, ek] = process.argv.slice(2);
const store = LocalBindingStore.inStateDir(dir);
for (;;) {
  const u = randomUUID();
  await store.bindIfAbsent(u, ek, {});
  process.stdout.write(u + '\\n');
}
`;

test('kill -9 of a process binding in a loop, 25 times: every acknowledged binding is there with its EK, no file is half-written', async (t) => {
  const { dir } = await tmpStore(t);
  const script = path.join(dir, 'looper.mjs');
  await writeFile(script, LOOPER);
  const acked = new Map<string, string>();
  for (let round = 0; round < 25; round++) {
    const e = ek();
    const child = execa(process.execPath, [script, dir, e], { reject: false });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    // Wait for the first acknowledgement, then kill at a random moment in the stream.
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    child.kill('SIGKILL');
    await child;
    for (const u of out.split('\n').filter((l) => /^[0-9a-f-]{36}$/.test(l))) acked.set(u, e);
  }
  const store = LocalBindingStore.inStateDir(dir);
  for (const [u, e] of acked) t.is((await store.get(u))?.ekPublicSha256, e, u);
  const whole = await assertAllRevisionsWhole(t, dir);
  t.true(whole >= acked.size);
  t.log(`${acked.size} acknowledged bindings over 25 kills, ${whole} on disk (the rest were bound but killed before the acknowledgement)`);
});
