/**
 * `sextant keyservice disk list | rebind` as a user runs them: usage errors with stable codes,
 * the compare-and-set seen from the CLI, and every change in the audit log, chain intact.
 */
import test from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import { sextant } from '../helpers/cli.js';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { lockAuditLog } from '../../keyservice/audit-writer-lock.js';

const ek = () => randomBytes(32).toString('hex');

test('usage: --help, neither or both of --to-ek-sha256/--unbind, a bad hash or UUID are exit 2 USAGE; no state dir is FILE_NOT_FOUND', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'binding-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const h = await sextant(['keyservice', 'disk', 'rebind', '--help']);
  t.is(h.exitCode, 0);
  for (const o of ['--state-dir', '--disk', '--to-ek-sha256', '--unbind', '--json']) t.true(h.stdout.includes(o), o);
  const uuid = randomUUID();
  const base = ['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', uuid, '--json'];
  for (const extra of [[], ['--unbind', '--to-ek-sha256', ek()], ['--to-ek-sha256', 'ab'.repeat(31)]]) {
    const r = await sextant([...base, ...extra]);
    t.is(r.exitCode, 2, extra.join(' '));
    t.like(JSON.parse(r.stdout), { ok: false, code: 'USAGE' });
  }
  const badUuid = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', '../etc', '--unbind', '--json']);
  t.like(JSON.parse(badUuid.stdout), { ok: false, code: 'USAGE' });
  const noDir = await sextant(['keyservice', 'disk', 'list', '--state-dir', path.join(dir, 'absent'), '--json']);
  t.is(noDir.exitCode, 2);
  t.like(JSON.parse(noDir.stdout), { ok: false, code: 'FILE_NOT_FOUND' });
});

test('rebind then unbind: list shows each revision; both changes are audit records of a chain that verifies', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'binding-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const uuid = randomUUID();
  const [a, b] = [ek(), ek()];
  await LocalBindingStore.inStateDir(dir).bindIfAbsent(uuid, a, { nodeName: 'worker-1' });
  const r = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', uuid, '--to-ek-sha256', 'sha256:' + b.toUpperCase(), '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: true, from: a, to: b, revision: 2 });
  const u = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', uuid, '--unbind', '--json']);
  t.like(JSON.parse(u.stdout), { ok: true, from: b, to: null, revision: 3 });
  const l = await sextant(['keyservice', 'disk', 'list', '--state-dir', dir]);
  t.is(l.exitCode, 0);
  t.regex(l.stdout, new RegExp(`${uuid}\\s+unbound\\s+revision 3 \\(admin-unbind`));
  const records = (await readFile(path.join(dir, 'audit.log'), 'utf8')).trimEnd().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>);
  t.like(records, [{ decision: 'disk-rebind', diskUuid: uuid, from: a, to: b, revision: 2 }, { decision: 'disk-rebind', from: b, to: null, revision: 3 }]);
  const v = await sextant(['keyservice', 'audit', 'verify', path.join(dir, 'audit.log'), '--json']);
  t.is(v.exitCode, 0, v.stderr);
});

test('the audit log held by a live process: AUDIT_LOG_IN_USE, the binding is unchanged; a dead holder\'s lock is taken over', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'binding-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const uuid = randomUUID();
  const a = ek();
  await LocalBindingStore.inStateDir(dir).bindIfAbsent(uuid, a, {});
  const lock = await lockAuditLog(path.join(dir, 'audit.log'), 'this test');
  const r = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', uuid, '--unbind', '--json']);
  t.is(r.exitCode, 1);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'AUDIT_LOG_IN_USE' });
  t.like(await LocalBindingStore.inStateDir(dir).get(uuid), { revision: 1, ekPublicSha256: a });
  await lock.release();
  // A lock left by a process that died (kill -9 of the service) does not block the admin.
  const dead = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  await writeFile(path.join(dir, 'audit.log.lock'), JSON.stringify({ pid: Number(dead.stdout), holder: 'sextant keyservice', since: new Date().toISOString() }));
  const ok = await sextant(['keyservice', 'disk', 'rebind', '--state-dir', dir, '--disk', uuid, '--unbind', '--json']);
  t.is(ok.exitCode, 0, ok.stderr);
});
