import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { parseMeasurementFile, serializeMeasurementFile } from '../../measurements/format/index.js';
import { sextant } from '../helpers/cli.js';
import { buildUki, HOST_STUB, hostKernel, SYSTEMD_MEASURE } from '../helpers/uki.js';
import { opensslKeyPair, sha256Hex, tempDir } from './signing-helpers.js';

/**
 * `measurements create` and `verify --image` on real UKIs: Debian 12's systemd-stub 252 and
 * kernel, wrapped with objcopy. systemd-measure (252) is the independent oracle for PCR 11.
 */

const CMDLINE = 'console=ttyS0 root=/dev/vda2 ro\n';
const OSREL = 'ID=debian\nVERSION_ID="12"\n';
const INITRD = Buffer.from('a tiny initrd\n');
const PHASES = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready'];

async function makeUki(dir: string, name: string, cmdline: string): Promise<string> {
  const out = path.join(dir, name);
  await buildUki({ stub: HOST_STUB, linux: { file: await hostKernel() }, initrd: INITRD, cmdline: Buffer.from(cmdline), osrel: Buffer.from(OSREL) }, out);
  return out;
}

async function systemdMeasurePcr11(dir: string): Promise<string> {
  const parts = { osrel: OSREL, cmdline: CMDLINE, initrd: INITRD };
  for (const [n, content] of Object.entries(parts)) await writeFile(path.join(dir, n), content);
  const r = await run(SYSTEMD_MEASURE, [
    'calculate',
    `--linux=${await hostKernel()}`,
    ...Object.keys(parts).map((n) => `--${n}=${path.join(dir, n)}`),
    '--bank=sha256',
    `--phase=${PHASES.join(':')}`,
  ]);
  const m = /11:sha256=([0-9a-f]{64})/.exec(r.stdout);
  if (!m) throw new Error(`unexpected systemd-measure output: ${r.stdout}`);
  return m[1];
}

test('create writes a reproducible, valid file whose PCR 11 equals systemd-measure calculate', async (t) => {
  const dir = await tempDir(t);
  const uki = await makeUki(dir, 'a.efi', CMDLINE);
  const args = ['measurements', 'create', '--uki', uki, '--phases', PHASES.join(','), '--name', 'node', '--image-version', '1.2.3', '--builder', 'test'];
  const one = path.join(dir, 'one.json');
  const two = path.join(dir, 'two.json');
  const r = await sextant([...args, '--out', one], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  t.is(r.exitCode, 0, r.stderr);
  t.is((await sextant([...args, '--out', two], { env: { SOURCE_DATE_EPOCH: '1700000000' } })).exitCode, 0);
  const bytes = await readFile(one);
  t.deepEqual(await readFile(two), bytes, 'same UKI and options, same bytes');

  const file = parseMeasurementFile(bytes);
  t.deepEqual(serializeMeasurementFile(file), bytes, 'written canonically');
  t.is(file.pcrs['11'].expected, await systemdMeasurePcr11(dir));
  t.deepEqual(Object.keys(file.pcrs), ['4', '9', '11', '12', '13']);
  t.true(Object.values(file.pcrs).every((p) => p.enforced));
  t.deepEqual(file.boot, { pcrPhases: PHASES });
  t.like(file.image, { name: 'node', version: '1.2.3', ukiSha256: sha256Hex(await readFile(uki)) });
  t.regex(file.image.stubVersion ?? '', /^252\b/);
  t.deepEqual(file.metadata, { builder: 'test', created: '2023-11-14T22:13:20Z' });
  const components = file.pcrs['11'].events?.map((e) => e.component);
  t.deepEqual([...new Set(components)], ['.linux', '.osrel', '.cmdline', '.initrd', 'systemd-pcrphase']);
});

test('verify --image: a matching UKI passes; another command line fails naming .cmdline', async (t) => {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const good = await makeUki(dir, 'good.efi', CMDLINE);
  const evil = await makeUki(dir, 'evil.efi', 'console=ttyS0 root=/dev/vda2 ro init=/bin/sh\n');
  const file = path.join(dir, 'm.json');
  t.is((await sextant(['measurements', 'create', '--uki', good, '--out', file, '--warn-only', '9'])).exitCode, 0);
  t.is((await sextant(['measurements', 'sign', '--key', key, file])).exitCode, 0);

  const ok = await sextant(['measurements', 'verify', '--key', pub, file, '--image', good]);
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);
  for (const pcr of ['4', '9', '11', '12', '13']) t.regex(ok.stdout, new RegExp(`^${pcr} +[0-9a-f]{64} +[0-9a-f]{64} +ok$`, 'm'));
  t.regex(ok.stdout, /recomputation OK/);

  const bad = await sextant(['measurements', 'verify', '--key', pub, file, '--image', evil]);
  t.is(bad.exitCode, 1);
  t.regex(bad.stdout, /^11 +[0-9a-f]{64} +[0-9a-f]{64} +MISMATCH$/m);
  t.regex(bad.stdout, /^9 +[0-9a-f]{64} +[0-9a-f]{64} +mismatch \(warn-only\)$/m);
  t.regex(bad.stdout, /^PCR 11: \.cmdline: measured [0-9a-f]{64}, expected [0-9a-f]{64}$/m);
  t.regex(bad.stdout, /^PCR 9: \.cmdline: measured/m);
  t.regex(bad.stdout, /^PCR 4: uki: measured/m);
  t.notRegex(bad.stdout, /PCR 11: \.(linux|osrel|initrd)/, 'only the changed component is named');
  t.regex(bad.stdout, /note: .*evil\.efi has sha256/);

  const json = JSON.parse((await sextant(['measurements', 'verify', '--key', pub, file, '--image', evil, '--json'])).stdout);
  t.false(json.ok);
  const row11 = json.recomputed.comparison.rows.find((r: { pcr: number }) => r.pcr === 11);
  t.deepEqual(row11.differences.map((d: { kind: string; component: string }) => [d.kind, d.component]), [['changed', '.cmdline']]);

  const notUki = await sextant(['measurements', 'verify', '--key', pub, file, '--image', file]);
  t.is(notUki.exitCode, 2);
  t.regex(notUki.stderr, /^sextant: (PE|UKI)_MALFORMED: /);
});
