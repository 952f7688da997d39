import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { measureBuiltUki } from '../../image-builder/measure.js';
import { ARTIFACTS } from '../../image-builder/build.js';
import { sha256File } from '../../lib/hash-file.js';
import { sextant } from '../helpers/cli.js';
import { buildUki, HOST_STUB, hostKernel } from '../helpers/uki.js';
import { tempDir } from '../measurements/signing-helpers.js';

/**
 * `sextant image diff` on two release folders whose UKIs are real (Debian 12's stub and
 * kernel) and differ the way a changed root file system shows up: another dm-verity
 * roothash on the command line, plus a package bump and another component hash.
 */

async function release(dir: string, cmdline: string, packages: string[], kubeadmSha: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const uki = path.join(dir, ARTIFACTS.uki);
  await buildUki(
    { stub: HOST_STUB, linux: { file: await hostKernel() }, initrd: Buffer.from('initrd\n'), cmdline: Buffer.from(cmdline), osrel: Buffer.from('ID=debian\n') },
    uki,
  );
  await writeFile(path.join(dir, ARTIFACTS.measurements), await measureBuiltUki(uki, { name: 'sextant-node', version: '0.1.0', debug: false }));
  const manifest = {
    image: { name: 'sextant-node', version: '0.1.0', debug: false },
    packages,
    components: [{ name: 'kubeadm', sha256: kubeadmSha, installPath: '/usr/bin/kubeadm', included: true }],
    tools: { systemd: '257.13-1~deb13u1' },
    agent: { 'usr/lib/sextant/sextant.mjs': kubeadmSha.slice(0, 8).repeat(8), 'usr/bin/sextant': 'c'.repeat(64) },
    notes: [],
  };
  await writeFile(path.join(dir, ARTIFACTS.manifest), JSON.stringify(manifest));
  const sums = [];
  for (const name of [ARTIFACTS.manifest, ARTIFACTS.measurements, ARTIFACTS.uki].sort()) sums.push(`${await sha256File(path.join(dir, name))}  ${name}\n`);
  await writeFile(path.join(dir, ARTIFACTS.sums), sums.join(''));
  return dir;
}

test('names the changed package, component, artifacts and PCR 11 .cmdline; identical releases exit 0', async (t) => {
  const dir = await tempDir(t);
  const a = await release(path.join(dir, 'a'), `roothash=${'1'.repeat(64)} ro`, ['systemd=257.13-1', 'nodejs=20.19.2'], 'a'.repeat(64));
  const b = await release(path.join(dir, 'b'), `roothash=${'2'.repeat(64)} ro`, ['systemd=257.13-1', 'nodejs=20.19.5'], 'b'.repeat(64));

  const same = await sextant(['image', 'diff', a, a, '--json']);
  t.is(same.exitCode, 0, same.stderr);
  t.true(JSON.parse(same.stdout).identical);

  const r = await sextant(['image', 'diff', a, b, '--json']);
  t.is(r.exitCode, 1, r.stderr);
  const d = JSON.parse(r.stdout);
  t.deepEqual(d.packages, [{ name: 'nodejs', from: '20.19.2', to: '20.19.5' }]);
  t.deepEqual(d.components, [{ name: 'kubeadm', from: 'a'.repeat(64), to: 'b'.repeat(64) }]);
  t.deepEqual(d.tools, []);
  t.deepEqual(d.agent, [{ name: 'usr/lib/sextant/sextant.mjs', from: 'a'.repeat(64), to: 'b'.repeat(64) }], 'an agent built from other sources is named');
  t.deepEqual(d.artifacts.map((x: { name: string }) => x.name).sort(), [ARTIFACTS.manifest, ARTIFACTS.measurements, ARTIFACTS.uki].sort());
  // Only the command line differs: PCR 11 (the stub's section measurement) and PCR 9 (the
  // kernel's LoadOptions) move; PCR 4 (Authenticode of the UKI) moves too, PCR 12/13 do not.
  const moved = d.pcrs.map((p: { pcr: string }) => p.pcr);
  t.true(moved.includes('11') && moved.includes('9') && moved.includes('4'), moved.join(','));
  t.false(moved.includes('12') || moved.includes('13'));
  const pcr11 = d.pcrs.find((p: { pcr: string }) => p.pcr === '11');
  t.deepEqual(
    pcr11.events.map((e: { kind: string; component: string }) => `${e.kind} ${e.component}`),
    ['changed .cmdline'],
  );

  const text = await sextant(['image', 'diff', a, b]);
  t.is(text.exitCode, 1);
  t.regex(text.stdout, /nodejs: 20\.19\.2 -> 20\.19\.5/);
  t.regex(text.stdout, /PCR 11: [0-9a-f]{16} -> [0-9a-f]{16}\n\s+changed \.cmdline/);
});

test('a folder that is not a release is a clear error', async (t) => {
  const dir = await tempDir(t);
  const r = await sextant(['image', 'diff', dir, dir]);
  t.is(r.exitCode, 2, r.stderr);
  t.regex(r.stderr, /FILE_NOT_FOUND: .* is not a release folder: cannot read manifest\.json/);
  await writeFile(path.join(dir, ARTIFACTS.manifest), '{"packages": 1}');
  const bad = await sextant(['image', 'diff', dir, dir]);
  t.regex(bad.stderr, /CONFIG_INVALID: .*not a sextant image manifest/);
});
