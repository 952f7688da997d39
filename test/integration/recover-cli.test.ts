/**
 * `sextant recover`'s local checks: usage errors exit 2, and a measurements file whose
 * signature does not verify is refused before the node is contacted (the node here is a
 * listener that records whether anyone connected).
 */
import test from 'ava';
import { createServer, type Server } from 'node:net';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { run } from '../../lib/exec.js';

let dir: string;
let listener: Server;
let port: number;
let connections = 0;

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'recover-cli-'));
  listener = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  port = (listener.address() as { port: number }).port;
});

test.after.always(async () => {
  await new Promise((r) => listener?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('--help names every option; a missing option is USAGE (exit 2)', async (t) => {
  const h = await sextant(['recover', '--help']);
  t.is(h.exitCode, 0);
  for (const o of ['--node ', '--node-fingerprint', '--master-secret', '--salt', '--measurements ', '--measurements-key', '--ek-ca', '--json']) t.true(h.stdout.includes(o), o);
  const r = await sextant(['recover', '--node', `https://127.0.0.1:${port}`, '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'USAGE' });
});

test('a measurements signature by another key: exit 1 SIGNATURE_INVALID and the node is never contacted', async (t) => {
  const signer = await measurementsKeys(await mkdtemp(path.join(dir, 'a-')));
  const other = await measurementsKeys(await mkdtemp(path.join(dir, 'b-')));
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, signer.keyPem, { '9': { expected: '00'.repeat(32), enforced: true } });
  const master = path.join(dir, 'master-secret');
  await writeFile(master, randomBytes(32), { mode: 0o600 });
  await writeFile(path.join(dir, 'salt'), randomBytes(32), { mode: 0o600 });
  const ca = path.join(dir, 'ek-ca.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'ek-ca.key'), '-out', ca, '-subj', '/CN=test EK CA', '-days', '1']);
  const before = connections;
  const args = ['recover', '--node', `https://127.0.0.1:${port}`, '--node-fingerprint', 'sha256:' + 'ab'.repeat(32), '--master-secret', master, '--measurements', m, '--ek-ca', ca, '--json'];
  const r = await sextant([...args, '--measurements-key', other.pubPem]);
  t.is(r.exitCode, 1, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'SIGNATURE_INVALID' });
  t.is(connections, before);
  // A master secret others can read is refused the same way, before any connection.
  await chmod(master, 0o644);
  const loose = await sextant([...args, '--measurements-key', signer.pubPem]);
  t.is(loose.exitCode, 2);
  const out = JSON.parse(loose.stdout) as { code: string; message: string };
  t.is(out.code, 'CONFIG_INVALID');
  t.regex(out.message, /master-secret is readable by group or others/);
  t.is(connections, before);
});
