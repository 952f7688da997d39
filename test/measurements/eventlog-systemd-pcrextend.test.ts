/**
 * The userspace log written by systemd itself: Debian trixie's systemd-pcrextend (257, unpacked
 * privately with its libsystemd-shared, libc6 and libssl3t64; run through trixie's dynamic
 * loader, nothing installed) measures boot phases and the machine ID into a real TPM (swtpm) and
 * writes its tpm2-measure.log (SYSTEMD_MEASURE_LOG_USERSPACE; SYSTEMD_FORCE_MEASURE because
 * this host did not boot through systemd-stub). The TPM first gets the PCR 9/11/15 events of a
 * real firmware boot (trixie-stub257). The oracle: what tpm2_pcrread reads afterwards.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { parseUserspaceLog } from '../../measurements/eventlog/userspace.js';
import { sextant } from '../helpers/cli.js';
import { debianPackage } from '../helpers/debian-package.js';
import { FIXTURES } from '../helpers/paths.js';
import { useSwtpm } from '../helpers/swtpm.js';
import { extendFirmwareEvents, tpmPcrRead } from '../helpers/userspace-log.js';

const BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const firmwareLog = readFileSync(path.join(FIXTURES, 'boots/trixie-stub257/eventlog.bin'));
const tpm = useSwtpm(test, { pcrBanks: [...BANKS] });

let dir: string;
let pcrextend: (args: string[]) => Promise<void>;
let version = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sextant-pcrextend-'));
  const [systemd, shared, libc, ssl] = await Promise.all(['systemd', 'libsystemd-shared', 'libc6', 'libssl3t64'].map((p) => debianPackage('trixie', p)));
  version = (await readFile(path.join(systemd, '.deb-name'), 'utf8')).trim();
  const libdir = path.join(libc, 'usr/lib/x86_64-linux-gnu');
  const libraryPath = [libdir, path.join(shared, 'usr/lib/x86_64-linux-gnu/systemd'), path.join(ssl, 'usr/lib/x86_64-linux-gnu'), '/lib/x86_64-linux-gnu'].join(':');
  pcrextend = async (args) => {
    await run(
      path.join(libdir, 'ld-linux-x86-64.so.2'),
      ['--library-path', libraryPath, path.join(systemd, 'usr/lib/systemd/systemd-pcrextend'), `--tpm2-device=${tpm().tcti}`, ...args],
      { env: { SYSTEMD_FORCE_MEASURE: '1', SYSTEMD_MEASURE_LOG_USERSPACE: path.join(dir, 'tpm2-measure.log') }, timeoutMs: 120_000 },
    );
  };
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial("systemd-pcrextend's own tpm2-measure.log, replayed after the firmware log, gives what the TPM holds", async (t) => {
  await extendFirmwareEvents(tpm().env, firmwareLog, [9, 11, 15]);
  for (const phase of ['enter-initrd', 'leave-initrd']) await pcrextend([phase]);
  await pcrextend(['--machine-id']);
  for (const phase of ['sysinit', 'ready']) await pcrextend([phase]);
  const tpmNow = await tpmPcrRead(tpm().env, BANKS, [9, 11, 15]);

  const userspace = path.join(dir, 'tpm2-measure.log');
  const records = parseUserspaceLog(await readFile(userspace));
  t.deepEqual(records.map((r) => [r.pcr, r.eventType, r.string]), [
    [11, 'phase', 'enter-initrd'],
    [11, 'phase', 'leave-initrd'],
    [15, 'machine-id', `machine-id:${(await readFile('/etc/machine-id', 'utf8')).trim()}`],
    [11, 'phase', 'sysinit'],
    [11, 'phase', 'ready'],
  ]);
  const fw = path.join(dir, 'binary_bios_measurements');
  await writeFile(fw, firmwareLog);
  const r = await sextant(['eventlog', 'replay', fw, '--userspace-log', userspace, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { banks: Record<string, Record<string, string>>; userspace: { ok: boolean; records: { status: string }[] } };
  for (const b of BANKS) for (const pcr of ['9', '11', '15']) t.is(out.banks[b][pcr], tpmNow[b][pcr], `${b} PCR ${pcr}`);
  t.deepEqual(out.userspace.records.map((c) => c.status), ['verified', 'verified', 'verified', 'verified', 'verified']);
  t.log(`${version}: ${records.length} records, every one verified; PCRs 9/11/15 equal tpm2_pcrread in ${BANKS.join(', ')}`);
});
