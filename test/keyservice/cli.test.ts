import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, SEXTANT_BIN } from '../helpers/paths.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { run } from '../../lib/exec.js';

const EK_CA = path.join(FIXTURES, 'keyservice/swtpm-a/ca.pem');
const pcrs = { '4': { expected: 'ab'.repeat(32), enforced: true } };

async function setup() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-cli-'));
  const keys = await measurementsKeys(dir);
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, keys.keyPem, pcrs);
  return { dir, keys, m, state: path.join(dir, 'state') };
}

test('first start creates the state, prints the fingerprint and serves until SIGTERM', async (t) => {
  const s = await setup();
  const child = execa(process.execPath, [SEXTANT_BIN, 'keyservice', '--listen', '127.0.0.1:0', '--state-dir', s.state, '--measurements', s.m, '--measurements-key', s.keys.pubPem, '--ek-ca', EK_CA], { reject: false });
  const firstLine = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
    child.once('exit', () => reject(new Error('keyservice exited early')));
  });
  try {
    t.regex(firstLine, /^sha256:[0-9a-f]{64}$/);
    t.is((await readFile(path.join(s.state, 'tls-fingerprint'), 'utf8')).trim(), firstLine);
    const fp = await run('openssl', ['x509', '-in', path.join(s.state, 'tls-cert.pem'), '-noout', '-fingerprint', '-sha256']);
    t.is(firstLine, 'sha256:' + fp.stdout.trim().split('=')[1].replace(/:/g, '').toLowerCase());
    for (const f of ['master-secret', 'salt']) {
      const st = await stat(path.join(s.state, f));
      t.is(st.mode & 0o777, 0o600, f);
      t.is(st.size, 32, f);
    }
  } finally {
    child.kill('SIGTERM');
    const r = await child;
    t.is(r.exitCode, 0, r.stderr);
    await rm(s.dir, { recursive: true });
  }
});

test('a forged measurements signature: the service refuses to start and creates nothing', async (t) => {
  const s = await setup();
  const other = await measurementsKeys();
  // Signed with another key than --measurements-key names.
  const forged = path.join(s.dir, 'forged.json');
  await writeSignedMeasurements(forged, other.keyPem, pcrs);
  const r = await sextant(['keyservice', '--listen', '127.0.0.1:0', '--state-dir', s.state, '--measurements', forged, '--measurements-key', s.keys.pubPem, '--ek-ca', EK_CA, '--json']);
  t.is(r.exitCode, 1);
  t.like(JSON.parse(r.stdout.trim().split('\n').pop()!), { ok: false, code: 'SIGNATURE_INVALID' });
  await t.throwsAsync(stat(s.state));
  // A file changed after signing, and a missing signature, are refused the same way.
  await writeFile(s.m, (await readFile(s.m, 'utf8')).replace('"enforced": true', '"enforced": false'));
  const r2 = await sextant(['keyservice', '--listen', '127.0.0.1:0', '--state-dir', s.state, '--measurements', s.m, '--measurements-key', s.keys.pubPem, '--ek-ca', EK_CA, '--json']);
  t.like(JSON.parse(r2.stdout.trim().split('\n').pop()!), { ok: false, code: 'SIGNATURE_INVALID' });
  await rm(other.dir, { recursive: true });
  await rm(s.m + '.sig');
  const r3 = await sextant(['keyservice', '--listen', '127.0.0.1:0', '--state-dir', s.state, '--measurements', s.m, '--measurements-key', s.keys.pubPem, '--ek-ca', EK_CA, '--json']);
  t.like(JSON.parse(r3.stdout.trim().split('\n').pop()!), { ok: false, code: 'SIGNATURE_INVALID' });
  await rm(s.dir, { recursive: true });
});

test('--config supplies the same keys (paths relative to the file); missing ones are USAGE', async (t) => {
  const s = await setup();
  const cfg = path.join(s.dir, 'ks.json');
  await writeFile(cfg, JSON.stringify({ listen: '127.0.0.1:0', stateDir: 'state', measurements: 'measurements.json', measurementsKey: 'signing.pub', ekCa: [EK_CA], nonceTtlSeconds: 'x' }));
  const bad = await sextant(['keyservice', '--config', cfg, '--json']);
  t.like(JSON.parse(bad.stdout.trim()), { ok: false, code: 'CONFIG_INVALID' });
  const none = await sextant(['keyservice', '--json']);
  t.is(none.exitCode, 2);
  t.like(JSON.parse(none.stdout.trim()), { ok: false, code: 'USAGE' });
  await rm(s.dir, { recursive: true });
});
