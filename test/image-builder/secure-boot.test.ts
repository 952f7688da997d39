/**
 * The build's Secure Boot step (image-builder/secure-boot.ts: what `sextant image build
 * --sb-key --sb-cert --sb-keys` runs right after mkosi assembled the UKI and the disk) on a
 * real UKI (the 257-stub capture UKI) in a real GPT disk with a FAT ESP, without mkosi.
 * Oracles: osslsigncode verify and sbverify against the db certificate, openssl's
 * certificate fingerprint, mtools reading the ESP back, and the TPM of a real Secure Boot boot
 * (test/fixtures/secureboot/boot) for PCR 7.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { extractUkiFromDisk, FALLBACK_BOOT_PATH } from '../../image-builder/extract-uki.js';
import { measureBuiltUki } from '../../image-builder/measure.js';
import { planSecureBoot, signBuiltUki } from '../../image-builder/secure-boot.js';
import { attachUkiSignature } from '../../image-builder/sign-uki.js';
import { parseMeasurementFile } from '../../measurements/format/index.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { authenticodeDigest } from '../../measurements/pe/authenticode.js';
import { FIXTURES } from '../helpers/paths.js';
import { secureBootCapture, SB_SIGNING_CERT, SB_SIGNING_KEY, SB_SIGNING_TIME, untrustedSigner, type SecureBootCapture } from '../helpers/boot/secureboot.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

let work: string;
let capture: SecureBootCapture;
let disk: string;

/** A GPT disk whose ESP holds the UKI as EFI/BOOT/BOOTX64.EFI dated `time`, as mkosi leaves it. */
async function espDisk(uki: string, out: string, time: number): Promise<void> {
  const espMiB = Math.ceil((await stat(uki)).size / 2 ** 20) + 40;
  const esp = `${out}.esp`;
  await run('mkfs.vfat', ['-C', '-F', '32', '-i', '5e7a0c1d', '-n', 'ESP', esp, String(espMiB * 1024)]);
  await run('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
  const dated = `${out}.uki`;
  await copyFile(uki, dated);
  await utimes(dated, time, time);
  await run('mcopy', ['-m', '-i', esp, dated, `::/${FALLBACK_BOOT_PATH}`]);
  await run('truncate', ['-s', `${espMiB + 2}M`, out]);
  await run('sfdisk', ['-q', out], { input: `label: gpt\nstart=2048, size=${espMiB * 2048}, type=${ESP_TYPE}, name=esp\n` });
  await run('dd', [`if=${esp}`, `of=${out}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
  await rm(esp);
  await rm(dated);
}

/** A fresh copy of the unsigned UKI and its disk, as the build has them after mkosi. */
async function built(name: string): Promise<{ uki: string; disk: string }> {
  const uki = path.join(work, `${name}.efi`);
  const raw = path.join(work, `${name}.raw`);
  await copyFile(capture.unsigned.path, uki);
  await run('cp', ['--sparse=always', disk, raw]);
  return { uki, disk: raw };
}

test.before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-sb-build-'));
  capture = await secureBootCapture(work);
  disk = path.join(work, 'base.raw');
  await espDisk(capture.unsigned.path, disk, SB_SIGNING_TIME);
});
test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const signing = { kind: 'key', key: SB_SIGNING_KEY, cert: SB_SIGNING_CERT } as const;

test('the build signs the UKI reproducibly, the disk boots the signed UKI, and the release names the certificate', async (t) => {
  const plan = await planSecureBoot({ signing, keysDir: capture.keys });
  const a = await built('a');
  const recordA = await signBuiltUki(a.uki, a.disk, plan, SB_SIGNING_TIME);
  await new Promise((r) => setTimeout(r, 2100)); // FAT times have 2 s steps: the clock must not leak in
  const b = await built('b');
  const recordB = await signBuiltUki(b.uki, b.disk, plan, SB_SIGNING_TIME);
  const signedA = await readFile(a.uki);
  t.is(sha256(signedA), sha256(await readFile(b.uki)), 'same inputs: the same signed UKI bytes');
  t.is(sha256(await readFile(a.disk)), sha256(await readFile(b.disk)), 'and the same disk bytes');
  t.deepEqual(recordA, recordB);
  t.is(sha256(signedA), sha256(await readFile(capture.signed)), 'the same bytes `sextant image sign-uki` gives with that key and time');
  t.true((await extractUkiFromDisk(a.disk)).equals(signedA), 'the ESP holds the signed UKI');
  t.notDeepEqual(await readFile(a.disk), await readFile(disk), 'the disk changed');

  // Independent verifiers accept the signature with the db certificate.
  const v = await run('osslsigncode', ['verify', '-in', a.uki, '-CAfile', SB_SIGNING_CERT], { okExitCodes: [1] });
  t.is(v.exitCode, 0, v.stdout);
  t.regex(v.stdout, /Signature verification: ok/);
  t.is((await run('sbverify', ['--cert', SB_SIGNING_CERT, a.uki], { okExitCodes: [1] })).exitCode, 0, 'sbverify accepts it');
  // The Authenticode hash (what PCR 4 measures) stays the unsigned UKI's.
  t.true(authenticodeDigest(signedA).equals(authenticodeDigest(await readFile(capture.unsigned.path))));

  // The manifest record: subject and the fingerprint openssl computes.
  const fp = (await run('openssl', ['x509', '-in', SB_SIGNING_CERT, '-noout', '-fingerprint', '-sha256'])).stdout.trim().split('=')[1].replace(/:/g, '').toLowerCase();
  t.true(recordA.signed);
  t.is(recordA.signer?.sha256Fingerprint, fp);
  t.regex(recordA.signer?.subject ?? '', /CN=sextant test Secure Boot db/);
  t.is(recordA.signingTime, '2026-01-01T00:00:00Z');
  t.is(recordA.keyDatabases?.db, sha256(plan.keys!.keys.db!));
});

test('measurements.json of the signed build enforces PCR 7 with its events, equal to a real Secure Boot boot\'s TPM', async (t) => {
  const plan = await planSecureBoot({ signing, keysDir: capture.keys });
  const a = await built('m');
  await signBuiltUki(a.uki, a.disk, plan, SB_SIGNING_TIME);
  const file = parseMeasurementFile(await measureBuiltUki(a.uki, { name: 'sextant-node', version: '0.1.0', debug: false }, plan.keys), 'measurements.json');
  const boot = JSON.parse(await readFile(path.join(FIXTURES, 'secureboot/boot/pcrs.json'), 'utf8')) as { banks: Record<string, Record<string, string>> };
  t.true(file.pcrs['7'].enforced);
  t.is(file.pcrs['7'].expected, boot.banks.sha256['7'], 'PCR 7 = what the TPM held after booting this signer with these keys');
  t.deepEqual(
    file.pcrs['7'].events?.map((e) => e.component),
    ['SecureBoot', 'PK', 'KEK', 'db', 'dbx', 'separator', 'authority CN=sextant test Secure Boot db, O=sextant tests'],
  );
  t.true(file.boot?.secureBoot, 'PCR 4 as with Secure Boot on');
  const unsigned = parseMeasurementFile(await measureBuiltUki(capture.unsigned.path, { name: 'sextant-node', version: '0.1.0', debug: false }), 'm');
  t.false('7' in unsigned.pcrs, 'an unsigned build predicts no PCR 7');
});

test('a signed release is reproduced without its key: its signature fits the rebuilt UKI byte for byte, and not another UKI', async (t) => {
  const again = path.join(work, 'attached.efi');
  t.true(await attachUkiSignature(capture.unsigned.path, capture.signed, again));
  t.is(sha256(await readFile(again)), sha256(await readFile(capture.signed)), 'rebuild + release signature = the release UKI');

  const plan = await planSecureBoot({ signing: { kind: 'release-signature', signedUki: capture.signed }, keysDir: capture.keys });
  const a = await built('r');
  const viaKey = await built('k');
  t.true((await signBuiltUki(a.uki, a.disk, plan, SB_SIGNING_TIME)).signed);
  await signBuiltUki(viaKey.uki, viaKey.disk, await planSecureBoot({ signing }), SB_SIGNING_TIME);
  t.is(sha256(await readFile(a.disk)), sha256(await readFile(viaKey.disk)), 'the same disk as signing with the key');

  // A different UKI (one byte of .cmdline changed): the signature does not cover it.
  const other = await readFile(capture.unsigned.path);
  const cmd = parsePe(other).sections.find((s) => s.name === '.cmdline')!;
  other[cmd.pointerToRawData] ^= 1;
  const changed = path.join(work, 'changed.efi');
  await writeFile(changed, other);
  t.false(await attachUkiSignature(changed, capture.signed, path.join(work, 'never.efi')));
  const c = await built('c');
  await copyFile(changed, c.uki);
  const record = await signBuiltUki(c.uki, c.disk, plan, SB_SIGNING_TIME);
  t.false(record.signed);
  t.regex(record.note, /not the one the signature .* covers/);
});

test('the inputs are checked before the build: keys without a signer, a signer no db entry trusts, an ECDSA certificate', async (t) => {
  await t.throwsAsync(planSecureBoot({ keysDir: capture.keys }), { code: 'USAGE' });
  const other = await untrustedSigner(work);
  await t.throwsAsync(planSecureBoot({ signing: { kind: 'key', ...other }, keysDir: capture.keys }), { code: 'SB_NOT_AUTHORIZED' });
  const ec = path.join(work, 'ec.crt');
  await run('openssl', ['req', '-new', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(work, 'ec.key'), '-out', ec, '-days', '1', '-subj', '/CN=ec/']);
  await t.throwsAsync(planSecureBoot({ signing: { kind: 'key', key: path.join(work, 'ec.key'), cert: ec } }), { code: 'KEY_INVALID' });
  await t.throwsAsync(planSecureBoot({ signing: { kind: 'key', key: SB_SIGNING_KEY, cert: path.join(work, 'missing.crt') } }), { code: 'KEY_INVALID' });
  const unsigned = await signBuiltUki(capture.unsigned.path, disk, await planSecureBoot({}), SB_SIGNING_TIME);
  t.false(unsigned.signed);
  t.regex(unsigned.note, /not signed/);
});
