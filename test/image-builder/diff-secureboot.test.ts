/**
 * `sextant image diff` names PCR 7 and the Secure Boot variable or authority when two
 * measurements files (or releases) differ in the firmware's key databases, on the real-world
 * case: Microsoft's 2023 certificate rollout (Microsoft UEFI CA 2023 and Windows UEFI CA 2023
 * added to db, Microsoft Corporation KEK 2K CA 2023 to KEK; the certificates from Debian
 * trixie's python3-virt-firmware, virt/firmware/certs/) and Microsoft's dbx updates
 * (2020-10-12 -> 2021-04-29, from Debian's golang-github-google-go-eventlog-dev,
 * wellknown/secure-boot/). The files are read at test time, never committed. Each new
 * measurements file is made from the new key folder with `measurements create --sb-keys`,
 * as an operator does before the rollout. The UKI is the real 257-stub capture UKI.
 */
import test from 'ava';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ARTIFACTS } from '../../image-builder/build.js';
import { sha256File } from '../../lib/hash-file.js';
import { debianPackage, goSource } from '../helpers/debian-package.js';
import { MICROSOFT_OWNER, secureBootCapture, untrustedSigner, type SecureBootCapture } from '../helpers/boot/secureboot.js';
import { sextant } from '../helpers/cli.js';

let work: string;
let capture: SecureBootCapture;
let virtCerts: string;
let wellKnown: string;

test.before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-sb-diff-'));
  capture = await secureBootCapture(work);
  virtCerts = path.join(await debianPackage('trixie', 'python3-virt-firmware'), 'usr/lib/python3/dist-packages/virt/firmware/certs');
  wellKnown = path.join(goSource(await debianPackage('sid', 'golang-github-google-go-eventlog-dev'), 'github.com/google/go-eventlog'), 'wellknown/secure-boot');
});
test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A copy of the capture's key folder (test PK, test + Microsoft 2011 KEK/db, 2021 dbx), changed by `edit`. */
async function keyFolder(name: string, edit: (keys: string) => Promise<void> = async () => {}): Promise<string> {
  const keys = path.join(work, name);
  await cp(capture.keys, keys, { recursive: true });
  await edit(keys);
  return keys;
}

/** Adds a Microsoft certificate at the end of a database (the name sorts last, as an appended update lands). */
async function addMicrosoft(keys: string, db: string, pem: string): Promise<void> {
  const file = path.join(keys, db, `zz-${pem}`);
  await copyFile(path.join(virtCerts, pem), file);
  await writeFile(`${file}.owner`, MICROSOFT_OWNER);
}

async function measurements(name: string, uki: string, source: string[]): Promise<string> {
  const out = path.join(work, `${name}.json`);
  const r = await sextant(['measurements', 'create', '--uki', uki, ...source, '--out', out, '--phases', 'enter-initrd,leave-initrd,sysinit,ready']);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return out;
}

interface Diff {
  identical: boolean;
  pcrs: { pcr: string; secureBoot?: string[]; events: { kind: string; component: string }[] }[];
  secureBoot: { name: string; from?: string; to?: string }[];
}
async function diff(a: string, b: string): Promise<{ exitCode: number; json: Diff; text: string }> {
  const j = await sextant(['image', 'diff', a, b, '--json']);
  const h = await sextant(['image', 'diff', a, b]);
  return { exitCode: j.exitCode, json: JSON.parse(j.stdout) as Diff, text: h.stdout };
}

test('the 2023 db entries, the 2023 KEK and a dbx update are each named as PCR 7 and their variable, nothing else moves', async (t) => {
  const current = await measurements('current', capture.signed, ['--sb-keys', capture.keys]);
  const same = await diff(current, await measurements('current-again', capture.signed, ['--sb-keys', await keyFolder('same')]));
  t.is(same.exitCode, 0);
  t.true(same.json.identical, 'the same keys: nothing to roll');

  const db2023 = await keyFolder('db-2023', async (k) => {
    await addMicrosoft(k, 'db', 'MicrosoftUEFICA2023.pem');
    await addMicrosoft(k, 'db', 'WindowsUEFICA2023.pem');
  });
  const d = await diff(current, await measurements('db-2023', capture.signed, ['--sb-keys', db2023]));
  t.is(d.exitCode, 1);
  t.deepEqual(d.json.pcrs.map((p) => p.pcr), ['7'], 'only PCR 7 moves');
  t.deepEqual(d.json.pcrs[0].secureBoot, ['db'], 'named: db (the signer\'s own db entry, the authority, is unchanged)');
  t.regex(d.text, /PCR 7 \(Secure Boot policy: db\)/);

  const kek2023 = await keyFolder('kek-2023', (k) => addMicrosoft(k, 'KEK', 'MicrosoftCorporationKEK2KCA2023.pem'));
  t.deepEqual((await diff(current, await measurements('kek-2023', capture.signed, ['--sb-keys', kek2023]))).json.pcrs.map((p) => [p.pcr, p.secureBoot]), [['7', ['KEK']]]);

  // The dbx update: the 2020-10-12 list on the machines, the 2021-04-29 one rolled.
  const dbx2020 = await keyFolder('dbx-2020', async (k) => {
    await rm(path.join(k, 'dbx'), { recursive: true });
    await mkdir(path.join(k, 'dbx'));
    await copyFile(path.join(wellKnown, 'dbxupdate_x64-2020-10-12.bin'), path.join(k, 'dbx', 'dbxupdate_x64-2020-10-12.bin'));
  });
  const old = await measurements('dbx-2020', capture.signed, ['--sb-keys', dbx2020]);
  const x = await diff(old, current);
  t.deepEqual(x.json.pcrs.map((p) => [p.pcr, p.secureBoot]), [['7', ['dbx']]]);
  t.deepEqual(x.json.pcrs[0].events.map((e) => [e.kind, e.component]), [['changed', 'dbx']]);
});

test('a UKI signed by a new db certificate names db and the authority; Secure Boot off names SecureBoot', async (t) => {
  const current = await measurements('current2', capture.signed, ['--sb-keys', capture.keys]);
  const signer = await untrustedSigner(work);
  const keys = await keyFolder('new-signer', (k) => copyFile(signer.cert, path.join(k, 'db', 'zz-new-signer.crt')));
  const resigned = path.join(work, 'resigned.efi');
  const s = await sextant(['image', 'sign-uki', capture.unsigned.path, '--key', signer.key, '--cert', signer.cert, '--time', '1767225600', '--out', resigned]);
  t.is(s.exitCode, 0, s.stderr);
  const d = await diff(current, await measurements('new-signer', resigned, ['--sb-keys', keys]));
  const pcr7 = d.json.pcrs.find((p) => p.pcr === '7');
  t.deepEqual(pcr7?.secureBoot, ['db', 'authority CN=sextant test Secure Boot db, O=sextant tests', 'authority CN=not in db'], `the new db entry, and the authority that went and the one that came: ${JSON.stringify(pcr7)}`);
  t.deepEqual(pcr7?.events.map((e) => [e.kind, e.component]), [['changed', 'db'], ['changed', 'authority CN=sextant test Secure Boot db, O=sextant tests']]);
  t.false(d.json.pcrs.some((p) => p.pcr === '4'), 'the Authenticode hash (PCR 4) does not cover the signature');

  const off = await measurements('sb-off', capture.signed, ['--ovmf-vars', '/usr/share/OVMF/OVMF_VARS_4M.fd']);
  const o = await diff(current, off);
  t.deepEqual(o.json.pcrs.find((p) => p.pcr === '7')?.secureBoot, ['SecureBoot', 'PK', 'KEK', 'db', 'dbx', 'authority CN=sextant test Secure Boot db, O=sextant tests']);
});

test('two release folders: the signer and the key databases are named under Secure Boot, from manifest.json', async (t) => {
  const release = async (name: string, measurementsFile: string, secureBoot: unknown): Promise<string> => {
    const dir = path.join(work, name);
    await mkdir(dir, { recursive: true });
    await copyFile(measurementsFile, path.join(dir, ARTIFACTS.measurements));
    await writeFile(path.join(dir, ARTIFACTS.manifest), JSON.stringify({ packages: [], components: [], tools: {}, secureBoot }));
    const sums = [];
    for (const n of [ARTIFACTS.manifest, ARTIFACTS.measurements].sort()) sums.push(`${await sha256File(path.join(dir, n))}  ${n}\n`);
    await writeFile(path.join(dir, ARTIFACTS.sums), sums.join(''));
    return dir;
  };
  const m = await measurements('rel', capture.signed, ['--sb-keys', capture.keys]);
  const unsigned = await measurements('rel-unsigned', capture.unsigned.path, []);
  const a = await release('rel-a', unsigned, { signed: false, note: 'the UKI is not signed' });
  const fp = (await readFile(path.join(work, 'rel.json'))).length.toString(16).padStart(64, '0');
  const b = await release('rel-b', m, { signed: true, signer: { subject: 'CN=sextant test Secure Boot db', sha256Fingerprint: fp }, keyDatabases: { PK: '1'.repeat(64), KEK: '2'.repeat(64), db: '3'.repeat(64), dbx: null } });
  const d = await diff(a, b);
  t.deepEqual(d.json.secureBoot.map((c) => [c.name, c.from, c.to]), [
    ['key database KEK', undefined, '2'.repeat(64)],
    ['key database PK', undefined, '1'.repeat(64)],
    ['key database db', undefined, '3'.repeat(64)],
    ['key database dbx', undefined, 'absent'],
    ['signed', 'false', 'true'],
    ['signer', undefined, 'CN=sextant test Secure Boot db'],
    ['signer certificate sha256', undefined, fp],
  ]);
  t.regex(d.text, /Secure Boot:\n {2}key database KEK/);
  t.true(d.json.pcrs.some((p) => p.pcr === '7' && (p as { from?: string }).from === undefined), 'PCR 7 is new: the unsigned release predicts none');
});
