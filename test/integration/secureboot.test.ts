/**
 * Secure Boot on, proven against real boots: qemu + OVMF's secure-boot build (SMM) + swtpm,
 * booting the 257-stub capture UKI signed with the test db key from a variable store that
 * `sextant image sb-vars` wrote from a real-world key folder (test PK, test and Microsoft KEK
 * and db certificates, Microsoft's real 2021-04-29 dbx update). The oracles are the TPM's PCRs
 * and event log from the boot, and virt-fw-vars (Red Hat's virt-firmware) for the store's
 * bytes. Fixture: test/fixtures/secureboot/boot/ (scripts/boot/capture-secureboot-fixture.mjs);
 * the live boots run in CI (CI=true) or with SEXTANT_LIVE_BOOT=1.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { FIXTURES } from '../helpers/paths.js';
import { bootAndCapture, BootStoppedError } from '../helpers/qemu.js';
import { sextant } from '../helpers/cli.js';
import { secureBootCapture, SB_SIGNING_TIME, untrustedSigner, virtFwVars, type SecureBootCapture } from '../helpers/boot/secureboot.js';

const FIXTURE = path.join(FIXTURES, 'secureboot/boot');
const BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const LIVE = process.env.CI === 'true' || process.env.SEXTANT_LIVE_BOOT === '1';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let work: string;
let capture: SecureBootCapture;
test.before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-sb-test-'));
  capture = await secureBootCapture(work);
});
test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Fixture {
  eventlog: Buffer;
  pcrs: PcrBanks;
  boot: { signedUkiSha256: string; varsSha256: string; unsignedUki: { uki: { sha256: string } } };
}
async function fixture(): Promise<Fixture> {
  return {
    eventlog: await readFile(path.join(FIXTURE, 'eventlog.bin')),
    pcrs: (JSON.parse(await readFile(path.join(FIXTURE, 'pcrs.json'), 'utf8')) as { banks: PcrBanks }).banks,
    boot: JSON.parse(await readFile(path.join(FIXTURE, 'boot.json'), 'utf8')),
  };
}

/** `sextant measure uki --json` with the given Secure Boot source, for one bank. */
async function predict(uki: string, bank: string, source: string[]): Promise<{ pcrs: Record<string, string>; events: { pcr: number; digest: string; data?: string; type: string }[] }> {
  const r = await sextant(['measure', 'uki', uki, '--bank', bank, ...source, '--json']);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** PCR 7 (and 4, 9, 11 when the UKI is the one booted) equal the TPM's, its events equal the log's exact bytes. */
async function assertBootPredicted(t: ExecutionContext, uki: string, eventlog: Buffer, pcrs: PcrBanks, sameUki: boolean): Promise<void> {
  const log = parseEventLog(eventlog);
  const logPcr7 = log.events.filter((e) => e.pcr === 7 && e.typeName !== 'EV_NO_ACTION');
  for (const source of [['--sb-keys', capture.keys], ['--ovmf-vars', capture.vars]]) {
    for (const bank of BANKS) {
      const p = await predict(uki, bank, source);
      t.is<string | undefined, string | undefined>(p.pcrs['7'], pcrs[bank]?.['7'], `${source[0]}: ${bank} PCR 7 equals the TPM's`);
      if (sameUki) for (const pcr of ['4', '9', '11']) t.is<string | undefined, string | undefined>(p.pcrs[pcr], pcrs[bank]?.[pcr], `${source[0]}: ${bank} PCR ${pcr} with Secure Boot on`);
      const predicted = p.events.filter((e) => e.pcr === 7);
      t.is(predicted.length, logPcr7.length, `${bank}: as many PCR 7 events as the log`);
      predicted.forEach((e, i) => {
        const real = logPcr7[i];
        t.is(e.type, real.typeName, `${bank} PCR 7 event ${i} type`);
        t.is<string | undefined, string | undefined>(e.digest, real.digests.find((d) => d.alg === bank)?.digest.toString('hex'), `${bank} PCR 7 event ${i} digest`);
        t.is(e.data, Buffer.from(real.data).toString('hex'), `PCR 7 event ${i} carries the log's exact bytes`);
      });
    }
  }
}

test('the store sb-vars writes is reproducible and is the fixture boot\'s; PCR 7 (all banks, every event byte) and PCR 4 equal that real Secure Boot boot', async (t) => {
  const fx = await fixture();
  const again = path.join(work, 'again.fd');
  t.is((await sextant(['image', 'sb-vars', '--keys', capture.keys, '--out', again])).exitCode, 0);
  t.is(sha256(await readFile(again)), sha256(await readFile(capture.vars)), 'same keys, same store bytes');
  t.is(sha256(await readFile(capture.vars)), fx.boot.varsSha256, 'the store the fixture booted from');
  const signedAgain = path.join(work, 'signed-again.efi');
  t.is((await sextant(['image', 'sign-uki', capture.unsigned.path, '--key', path.join(FIXTURES, 'secureboot/signing/db.key'), '--cert', path.join(FIXTURES, 'secureboot/signing/db.crt'), '--time', String(SB_SIGNING_TIME), '--out', signedAgain])).exitCode, 0);
  t.is(sha256(await readFile(signedAgain)), sha256(await readFile(capture.signed)), 'same UKI, key and time: the same signed bytes');
  // The capture UKI embeds the host's kernel: when it was updated since the capture, PCR 4/9/11
  // are the live boot's to prove; PCR 7 depends only on the keys and the signer.
  // A drifted input is no proof (issue 12): the capture UKI embeds the host's kernel and stub.
  t.is(sha256(await readFile(capture.signed)), fx.boot.signedUkiSha256, 'the signed capture UKI rebuilds bit-identically; if not, rerun node scripts/boot/capture-secureboot-fixture.mjs');
  await assertBootPredicted(t, capture.signed, fx.eventlog, fx.pcrs, true);
});

test('sextant eventlog replay of the Secure Boot boot gives the TPM\'s PCR 7 in every bank', async (t) => {
  const fx = await fixture();
  const r = await sextant(['eventlog', 'replay', path.join(FIXTURE, 'eventlog.bin'), '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const banks = (JSON.parse(r.stdout) as { banks: PcrBanks }).banks;
  for (const bank of BANKS) t.is(banks[bank]?.['7'], fx.pcrs[bank]?.['7'], bank);
});

test('virt-fw-vars reads the variables sb-vars enrolled, byte for byte, and sextant reads a store virt-fw-vars enrolled the same', async (t) => {
  const dump = path.join(work, 'ours.json');
  await virtFwVars(['-i', capture.vars, '--output-json', dump]);
  const vars = (JSON.parse(await readFile(dump, 'utf8')) as { variables: { name: string; guid: string; attr: number; data: string }[] }).variables;
  const byName = new Map(vars.map((v) => [v.name, v]));
  const ours = JSON.parse((await sextant(['measure', 'uki', capture.signed, '--ovmf-vars', capture.vars, '--json'])).stdout) as { events: { pcr: number; description: string; data?: string }[] };
  // The PCR 7 events carry UEFI_VARIABLE_DATA: 32 header bytes, the UTF-16 name, then the variable's bytes.
  for (const [i, name] of ['PK', 'KEK', 'db', 'dbx'].entries()) {
    const ev = ours.events.filter((e) => e.pcr === 7)[i + 1];
    const data = Buffer.from(ev.data!, 'hex').subarray(32 + 2 * name.length);
    t.is(byName.get(name)?.data, data.toString('hex'), `${name}: virt-fw-vars reads what sextant predicts the firmware measures`);
    t.is(byName.get(name)?.attr, 0x27, `${name}: NV, BS, RT, time-based authenticated`);
  }
  t.is(byName.get('SecureBootEnable')?.data, '01');
  t.is(byName.get('CustomMode')?.data, '00');

  // The other way round: virt-fw-vars enrolls the same certificates and dbx; sextant predicts from its store.
  const keys = capture.keys;
  const pem = async (der: string): Promise<string> => {
    const out = path.join(work, path.basename(der) + '.pem');
    const { X509Certificate } = await import('node:crypto');
    await writeFile(out, new X509Certificate(await readFile(der)).toString());
    return out;
  };
  const owner = (await readFile(path.join(keys, 'owner-guid'), 'utf8')).trim();
  const theirs = path.join(work, 'theirs.fd');
  await virtFwVars([
    '-i', '/usr/share/OVMF/OVMF_VARS_4M.fd', '--set-pk', owner, await pem(path.join(keys, 'PK/PK.der')),
    '--add-kek', owner, await pem(path.join(keys, 'KEK/KEK.der')),
    '--add-kek', '77fa9abd-0359-4d32-bd60-28f4e78f784b', await pem(path.join(keys, 'KEK/MicCorKEKCA2011_2011-06-24.crt')),
    // db in the key folder's order (file names sorted: Microsoft's two, then db.der)
    '--add-db', '77fa9abd-0359-4d32-bd60-28f4e78f784b', await pem(path.join(keys, 'db/MicCorUEFCA2011_2011-06-27.crt')),
    '--add-db', '77fa9abd-0359-4d32-bd60-28f4e78f784b', await pem(path.join(keys, 'db/MicWinProPCA2011_2011-10-19.crt')),
    '--add-db', owner, await pem(path.join(keys, 'db/db.der')),
    '--set-dbx', path.join(keys, 'dbx/dbxupdate_x64-2021-04-29.bin'), '--sb', '-o', theirs,
  ]);
  const a = JSON.parse((await sextant(['measure', 'uki', capture.signed, '--ovmf-vars', theirs, '--json'])).stdout) as { pcrs: Record<string, string> };
  const b = JSON.parse((await sextant(['measure', 'uki', capture.signed, '--sb-keys', keys, '--json'])).stdout) as { pcrs: Record<string, string> };
  t.is(a.pcrs['7'], b.pcrs['7'], 'PCR 7 from virt-fw-vars\' store equals PCR 7 from the key folder');
});

test('an unsigned UKI and one signed by a key no db entry trusts are SB_NOT_AUTHORIZED (exit 1) for the prediction', async (t) => {
  const r = await sextant(['measure', 'uki', capture.unsigned.path, '--sb-keys', capture.keys]);
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /SB_NOT_AUTHORIZED: the UKI is not signed/);
  const other = await untrustedSigner(work);
  const bad = path.join(work, 'untrusted.efi');
  t.is((await sextant(['image', 'sign-uki', capture.unsigned.path, '--key', other.key, '--cert', other.cert, '--out', bad])).exitCode, 0);
  const u = await sextant(['measure', 'uki', bad, '--sb-keys', capture.keys]);
  t.is(u.exitCode, 1);
  t.regex(u.stderr, /SB_NOT_AUTHORIZED: no db certificate authorizes the UKI's signer \(CN=not in db\)/);
});

const live = LIVE ? test.serial : test.serial.skip;

live('live: the signed UKI boots with Secure Boot on and PCRs 4, 7, 9, 11 equal the prediction in every bank', async (t) => {
  const boot = await bootAndCapture({ efiBinary: capture.signed, secureBootVars: capture.vars, timeoutMs: 900_000 });
  t.log(`Secure Boot boot took ${boot.bootSeconds.toFixed(0)} s`);
  await assertBootPredicted(t, capture.signed, boot.eventlog, boot.pcrs, true);
});

live('live: the firmware refuses an unsigned UKI and one signed by an untrusted key (serial console: Access Denied)', async (t) => {
  const other = await untrustedSigner(work);
  const bad = path.join(work, 'untrusted-live.efi');
  t.is((await sextant(['image', 'sign-uki', capture.unsigned.path, '--key', other.key, '--cert', other.cert, '--out', bad])).exitCode, 0);
  for (const efi of [capture.unsigned.path, bad]) {
    const e = await t.throwsAsync(bootAndCapture({ efiBinary: efi, secureBootVars: capture.vars, timeoutMs: 600_000, stopOnSerial: /failed to load Boot\d+ .*: Access Denied/ }));
    t.true(e instanceof BootStoppedError, `${path.basename(efi)}: stopped at the firmware's refusal, not a timeout (${e?.message.slice(0, 200)})`);
    t.regex((e as BootStoppedError).serialLog, /Access Denied/);
  }
});
