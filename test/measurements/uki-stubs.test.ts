/**
 * The stub models after 257, keyed on .sdmagic: what a 262 stub measures differently, the
 * refusal of a stub newer than the newest model, and the platform-dependent measurements a
 * prediction lists instead of guessing. The equality with real boots of 262 UKIs (objcopy and
 * ukify) is proven in test/integration/boot.test.ts; this file holds what those boots showed
 * that the fixtures do not carry (the console= a 262 stub appends on QEMU).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { precomputeUki } from '../../measurements/uki/precompute.js';
import { parseUki } from '../../measurements/uki/sections.js';
import { NEWEST_MODELLED_STUB, stubModel } from '../../measurements/uki/stub-model.js';
import { buildCaptureUki, CAPTURE_RECIPES } from '../helpers/boot/capture-uki.js';
import { loadBootFixture } from '../helpers/boot/fixtures.js';
import { readTcgLog } from '../helpers/boot/tcg-log-oracle.js';
import { sextant } from '../helpers/cli.js';
import { buildUki, hostKernel, sidStub } from '../helpers/uki.js';

let work: string;
let stub262: string;

test.before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sextant-uki-stubs-'));
  stub262 = await sidStub();
});
test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A UKI on sid's stub with its .sdmagic version string replaced (same length). */
async function ukiWithStubVersion(version: string, cmdline: string): Promise<string> {
  const stub = await readFile(stub262);
  const at = stub.indexOf('systemd-stub 262.1-1');
  if (at < 0) throw new Error('sid stub is not 262.1-1: update this test with the new fixtures');
  const patched = Buffer.from(stub);
  patched.write(`systemd-stub ${version}`, at, 'latin1');
  const stubFile = path.join(work, `stub-${version}.efi`);
  await writeFile(stubFile, patched);
  const out = path.join(work, `uki-${version}-${cmdline.length}.efi`);
  await buildUki({ stub: stubFile, linux: { file: await hostKernel() }, initrd: Buffer.from('initrd'), cmdline: Buffer.from(cmdline), osrel: Buffer.from('ID=test\n') }, out);
  return out;
}

test('sid ships a 262 stub, the newest modelled one', async (t) => {
  const uki = await ukiWithStubVersion('262.1-1', 'console=ttyS0');
  t.like(parseUki(await readFile(uki)).stub, { major: 262, version: '262.1-1', source: '.sdmagic' });
  t.is(NEWEST_MODELLED_STUB, 262);
});

test('a stub newer than the newest model is refused with STUB_NOT_MODELLED naming 262 (exit 2)', async (t) => {
  const uki = await ukiWithStubVersion('263.0-1', 'console=ttyS0');
  const r = await sextant(['measure', 'uki', uki, '--json']);
  t.is(r.exitCode, 2, r.stderr);
  t.regex(r.stderr, /STUB_NOT_MODELLED: systemd-stub 263 is newer than the newest modelled stub \(262\)/);
  t.throws(() => stubModel(255), { code: 'STUB_NOT_MODELLED', message: /modelled: 252, 257, 258-260, 261-262/ });
  // the documented way round it: assume the newest model
  const forced = await sextant(['measure', 'uki', uki, '--json', '--stub', '262']);
  t.is(forced.exitCode, 0, forced.stderr);
  t.is(JSON.parse(forced.stdout).stub.modelled, 262);
});

test('262: PCR 4 holds the UKI only; forcing the 257 model predicts the kernel event the real boot did not measure', async (t) => {
  const recipe = CAPTURE_RECIPES.find((r) => r.name === 'sid-stub262')!;
  const f = await loadBootFixture(recipe.name);
  const built = await buildCaptureUki(recipe, path.join(work, 'capture262.efi'));
  t.is(built.recipe.uki.sha256, f.boot.uki.uki.sha256, `this host rebuilds the UKI the fixture booted (else rerun scripts/boot/capture-fixtures.mjs ${recipe.name})`);
  const bytes = await readFile(built.path);
  const logPcr4 = readTcgLog(f.eventlog).filter((e) => e.pcr === 4).map((e) => e.digests.sha256 ?? '');
  const right = precomputeUki(bytes);
  t.deepEqual(right.events.filter((e) => e.pcr === 4).map((e) => e.digest), logPcr4);
  t.is(right.pcrs['4'], f.pcrs.sha256?.['4'] ?? 'none');
  const wrong = precomputeUki(bytes, { stubMajor: 257 });
  t.is(wrong.events.filter((e) => e.pcr === 4).length, logPcr4.length + 1, 'the 257 model adds the LoadImage measurement of .linux');
  t.not(wrong.pcrs['4'], f.pcrs.sha256?.['4'] ?? 'none');
  t.like(right.stub, { major: 262, modelled: 262, provenance: 'boot' });
  t.true(right.stub.caveats.some((c) => c.startsWith('PCR 1: SMBIOS')), 'the SMBIOS measurement into PCR 1 is named, not predicted');
  t.false(right.stub.caveats.some((c) => c.includes('console=')), '.cmdline has console=: PCR 9 does not depend on the platform');
});

test('262 without console= in .cmdline: PCR 9 is flagged, and --stub-console reproduces what a real QEMU boot measured', async (t) => {
  const uki = await ukiWithStubVersion('262.1-1', 'panic=-1 no_timer_check');
  const plain = await sextant(['measure', 'uki', uki, '--json']);
  t.is(plain.exitCode, 0, plain.stderr);
  t.true((JSON.parse(plain.stdout).stub.caveats as string[]).some((c) => c.startsWith('PCR 9: .cmdline has no console=')));
  const r = await sextant(['measure', 'uki', uki, '--json', '--stub-console', 'console=uart,io,0x3f8 console=tty0']);
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { events: { pcr: number; description: string; digest: string }[]; stub: { caveats: string[] } };
  // Recorded on 2026-12-04: a UKI on sid's 262.1-1 stub with .cmdline "panic=-1 no_timer_check",
  // booted under OVMF 2022.11 + swtpm on qemu 7.2 q35 (-serial, default VGA): the guest's
  // /proc/cmdline read "panic=-1 no_timer_check console=uart,io,0x3f8 console=tty0" and the
  // kernel's LOADED_IMAGE::LoadOptions event in PCR 9 carried this SHA-256.
  const measured = 'b3b290e0dbe5f802b2bc27fec76b626101f91eebe3b2cf7dab4575e60f92d8b7';
  t.is(out.events.find((e) => e.pcr === 9 && e.description === 'LOADED_IMAGE::LoadOptions')?.digest, measured);
  t.is(createHash('sha256').update(Buffer.from('panic=-1 no_timer_check console=uart,io,0x3f8 console=tty0\0', 'utf16le')).digest('hex'), measured);
  t.false(out.stub.caveats.some((c) => c.includes('console=')));
});

test('257 and older never append a console, whatever --stub-console says', async (t) => {
  const uki = await ukiWithStubVersion('262.1-1', 'quiet');
  const bytes = await readFile(uki);
  const with257 = precomputeUki(bytes, { stubMajor: 257, stubConsole: 'console=ttyS0' });
  const plain257 = precomputeUki(bytes, { stubMajor: 257 });
  t.deepEqual(with257.pcrs, plain257.pcrs);
  t.false(plain257.stub.caveats.some((c) => c.includes('console=')));
});
