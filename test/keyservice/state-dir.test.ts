import test from 'ava';
import { copyFile, mkdtemp, readFile, rm, stat, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStateDir } from '../../keyservice/state-dir.js';
import { run } from '../../lib/exec.js';

test('first start creates secrets (0600, 32 raw bytes) and a TLS pair whose fingerprint matches openssl', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-state-'));
  const s = await openStateDir(dir);
  t.deepEqual(s.created.sort(), ['master-secret', 'salt', 'tls-cert.pem', 'tls-key.pem']);
  for (const f of ['master-secret', 'salt', 'tls-key.pem']) t.is((await stat(path.join(dir, f))).mode & 0o777, 0o600, f);
  t.is((await readFile(path.join(dir, 'master-secret'))).length, 32);
  const r = await run('openssl', ['x509', '-in', path.join(dir, 'tls-cert.pem'), '-noout', '-fingerprint', '-sha256']);
  const hex = r.stdout.trim().split('=')[1].replace(/:/g, '').toLowerCase();
  t.is(s.fingerprint, 'sha256:' + hex);
  t.is((await readFile(path.join(dir, 'tls-fingerprint'), 'utf8')).trim(), s.fingerprint);

  const again = await openStateDir(dir);
  t.deepEqual(again.created, []);
  t.deepEqual(again.masterSecret, s.masterSecret);
  t.is(again.fingerprint, s.fingerprint);
  await rm(dir, { recursive: true });
});

test('a master secret readable by others is refused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-state-'));
  await openStateDir(dir);
  await chmod(path.join(dir, 'master-secret'), 0o644);
  await t.throwsAsync(openStateDir(dir), { code: 'CONFIG_INVALID' });
  await rm(dir, { recursive: true });
});

test('every secret with a loose mode is refused, naming the file, its mode and the fix: tls-key.pem, the state directory, a --tls-key file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const state = path.join(dir, 'state');
  await openStateDir(state);
  const key = path.join(state, 'tls-key.pem');
  await chmod(key, 0o644);
  let e = await t.throwsAsync(openStateDir(state), { code: 'CONFIG_INVALID' });
  t.is(e!.message, `${key} is readable by group or others (mode 0644); fix: chmod 600 ${key}`);
  await chmod(key, 0o600);
  await chmod(state, 0o755);
  e = await t.throwsAsync(openStateDir(state), { code: 'CONFIG_INVALID' });
  t.is(e!.message, `${state} is readable by group or others (mode 0755); fix: chmod 700 ${state}`);
  await chmod(state, 0o700);
  // A key pair given with --tls-cert/--tls-key, outside the state directory.
  const own = { keyFile: path.join(dir, 'own-key.pem'), certFile: path.join(dir, 'own-cert.pem') };
  await copyFile(key, own.keyFile);
  await copyFile(path.join(state, 'tls-cert.pem'), own.certFile);
  await chmod(own.keyFile, 0o640);
  e = await t.throwsAsync(openStateDir(state, { tls: own }), { code: 'CONFIG_INVALID' });
  t.regex(e!.message, /own-key\.pem is readable by group or others \(mode 0640\); fix: chmod 600 /);
  await chmod(own.keyFile, 0o600);
  t.is((await openStateDir(state, { tls: own })).tlsKeyPem, await readFile(key, 'utf8'));
});
