import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SEXTANT_BIN } from '../helpers/paths.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { vendorCaFiles } from '../helpers/real-tpm-certs.js';

async function setup() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-store-'));
  const keys = await measurementsKeys(dir);
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, keys.keyPem, { '4': { expected: 'ab'.repeat(32), enforced: true } });
  return { dir, args: ['keyservice', '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--measurements', m, '--measurements-key', keys.pubPem] };
}

test('sextant keyservice --ek-ca-store tpm-vendors: no --ek-ca needed; the log says how many pinned CAs it found where', async (t) => {
  const s = await setup();
  t.teardown(() => rm(s.dir, { recursive: true, force: true }));
  const { dir } = await vendorCaFiles();
  const child = execa(process.execPath, [SEXTANT_BIN, ...s.args, '--ek-ca-store', 'tpm-vendors', '--ek-ca-store-dir', dir, '--json'], { reject: false });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
    });
    child.once('exit', () => reject(new Error(`keyservice exited early: ${stderr}`)));
  });
  child.kill('SIGTERM');
  const r = await child;
  t.is(r.exitCode, 0, stderr);
  t.like(started, { ok: true });
  t.regex(stderr, new RegExp(`EK CA store tpm-vendors \\(\\d{4}-\\d{2}-\\d{2}\\): 24 of \\d+ pinned CAs found in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('an unknown store, a store whose certificates are nowhere, a directory without a store: CONFIG_INVALID before anything starts', async (t) => {
  const s = await setup();
  t.teardown(() => rm(s.dir, { recursive: true, force: true }));
  const unknown = await sextant([...s.args, '--ek-ca-store', 'tpm-makers', '--json']);
  t.like(JSON.parse(unknown.stdout.trim()), { ok: false, code: 'CONFIG_INVALID' });
  const empty = await sextant([...s.args, '--ek-ca-store', 'gcp-vtpm', '--ek-ca-store-dir', s.dir, '--json']);
  t.like(JSON.parse(empty.stdout.trim()), { ok: false, code: 'CONFIG_INVALID' });
  t.regex(empty.stdout, /EK CA store \\"gcp-vtpm\\": none of its 5 pinned certificates found in/);
  const dirOnly = await sextant([...s.args, '--ek-ca', path.join(s.dir, 'x.pem'), '--ek-ca-store-dir', s.dir, '--json']);
  t.like(JSON.parse(dirOnly.stdout.trim()), { ok: false, code: 'CONFIG_INVALID' });
});
