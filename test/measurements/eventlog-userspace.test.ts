/**
 * systemd's userspace measurement log (/run/log/systemd/tpm2-measure.log) replayed together with
 * a real firmware log. The oracle is a real TPM 2.0 (swtpm): it gets the firmware log's PCR 11
 * and 15 events (tpm2_pcrextend) and must then hold the PCR 11 the real boot recorded; the
 * userspace measurements go in the way systemd-pcrextend makes them, through TPM2_PCR_Event
 * (tpm2_pcrevent: the TPM hashes the word in every bank itself); then `sextant eventlog replay
 * --userspace-log` must print what tpm2_pcrread reads. The CEL-JSON records are written here in
 * systemd's format (JSON-SEQ, as systemd's src/shared/tpm2-util.c writes and src/pcrlock reads them).
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { run } from '../../lib/exec.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isSextantError } from '../../lib/errors.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog } from '../../measurements/eventlog/replay.js';
import { parseUserspaceLog, replayWithUserspace } from '../../measurements/eventlog/userspace.js';
import { sextant } from '../helpers/cli.js';
import { bankDigest, type AnyBank } from '../helpers/eventlog.js';
import { FIXTURES } from '../helpers/paths.js';
import { useSwtpm } from '../helpers/swtpm.js';
import { celJsonRecord, extendFirmwareEvents, tpmPcrRead, type Measurement } from '../helpers/userspace-log.js';

const BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const BOOT = path.join(FIXTURES, 'boots/trixie-stub257');
const firmwareLog = readFileSync(path.join(BOOT, 'eventlog.bin'));
const recorded = JSON.parse(readFileSync(path.join(BOOT, 'pcrs.json'), 'utf8')).banks as Record<string, Record<string, string>>;
const tpm = useSwtpm(test, { pcrBanks: [...BANKS] });

const record = (m: Measurement, banks: readonly AnyBank[] = BANKS): string => celJsonRecord(m, banks);

const MACHINE_ID = 'machine-id:6d9d5a6fbc9d4b52a1c0a46e17d9a0c2';
const BOOT_MEASUREMENTS: Measurement[] = [
  { pcr: 11, eventType: 'phase', string: 'enter-initrd' },
  // systemd-tpm2-setup-early: each NvPCR's name into PCR 9, then the separator (systemd 258+).
  { pcr: 9, eventType: 'nvpcr-init', string: 'nvpcr-init:hardware:0x1d10200:000bff27bc66b6eda11bccd3a0ca07664ae4c360bcc3d7ef019d0b19cb5fa4067541' },
  { pcr: 9, eventType: 'nvpcr-separator', string: 'nvpcr-separator' },
  { pcr: 11, eventType: 'phase', string: 'leave-initrd' },
  { pcr: 15, eventType: 'machine-id', string: MACHINE_ID },
  { pcr: 15, eventType: 'filesystem', string: 'file-system:/:ext4:1d1c1c82-8d0c-4b1b-b3a4-5e1d7a6c7e30::c0b2d6a4-4e0d-4bcd-9a58-7a3e1f6a2c11:root-x86-64:root' },
  { pcr: 11, eventType: 'phase', string: 'sysinit' },
  { pcr: 11, eventType: 'phase', string: 'ready' },
];

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sextant-userspace-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pcrRead = (pcrs: number[]) => tpmPcrRead(tpm().env, BANKS, pcrs);

test.serial('firmware log + systemd userspace log replay to what a real TPM holds after the same measurements', async (t) => {
  const env = tpm().env;
  // The firmware part: the real boot's PCR 9/11/15 events, extended as the firmware and the kernel's EFI stub did.
  await extendFirmwareEvents(env, firmwareLog, [9, 11, 15]);
  const afterFirmware = await pcrRead([9, 11]);
  for (const b of BANKS) {
    t.is(afterFirmware[b]['11'], recorded[b]['11'], `${b}: the TPM's PCR 11 after the firmware events is the real boot's`);
    t.is(afterFirmware[b]['9'], recorded[b]['9'], `${b}: and PCR 9`);
  }
  // The userspace part: TPM2_PCR_Event, as systemd-pcrextend measures a word into every bank.
  for (const m of BOOT_MEASUREMENTS) {
    const word = path.join(dir, 'word');
    await writeFile(word, m.string);
    await run('tpm2_pcrevent', [String(m.pcr), word], { env, timeoutMs: 60_000 });
  }
  const tpmNow = await pcrRead([9, 11, 15]);

  const fw = path.join(dir, 'binary_bios_measurements');
  const userspace = path.join(dir, 'tpm2-measure.log');
  await writeFile(fw, firmwareLog);
  await writeFile(userspace, BOOT_MEASUREMENTS.map((m) => record(m)).join(''));
  const r = await sextant(['eventlog', 'replay', fw, '--userspace-log', userspace, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { format: string; banks: Record<string, Record<string, string>>; userspace: { ok: boolean; records: { pcr: number; status: string; eventType: string; string: string }[] } };
  for (const b of BANKS) {
    t.is(out.banks[b]['9'], tpmNow[b]['9'], `${b} PCR 9`);
    t.is(out.banks[b]['11'], tpmNow[b]['11'], `${b} PCR 11`);
    t.is(out.banks[b]['15'], tpmNow[b]['15'], `${b} PCR 15`);
    t.is(out.banks[b]['4'], recorded[b]['4'], `${b} PCR 4 untouched by userspace`);
  }
  t.true(out.userspace.ok);
  t.deepEqual(out.userspace.records.map((c) => [c.pcr, c.eventType, c.string, c.status]), BOOT_MEASUREMENTS.map((m) => [m.pcr, m.eventType, m.string, 'verified']));
  // Without the userspace log, PCR 11 is the firmware's alone: the phase words are what differs.
  const alone = JSON.parse((await sextant(['eventlog', 'replay', fw, '--json'])).stdout) as { banks: Record<string, Record<string, string>> };
  t.is(alone.banks.sha256['11'], recorded.sha256['11']);
  t.not(alone.banks.sha256['11'], tpmNow.sha256['11']);
});

test('each userspace record is checked against its content: a phase word that is not what was extended is a mismatch (exit 1)', async (t) => {
  const forged: Measurement = { pcr: 11, eventType: 'phase', string: 'ready', digests: Object.fromEntries(BANKS.map((b) => [b, bankDigest(b, Buffer.from('leave-initrd'))])) };
  const volumeKey: Measurement = {
    pcr: 15,
    eventType: 'volume-key',
    string: 'cryptsetup:root:1e023a55-60f9-4b6b-9b80-67438dc5f065',
    digests: Object.fromEntries(BANKS.map((b) => [b, bankDigest(b, Buffer.from('an HMAC keyed by the volume key'))])),
  };
  const fw = path.join(dir, 'fw-forged.bin');
  const userspace = path.join(dir, 'forged.log');
  await writeFile(fw, firmwareLog);
  await writeFile(userspace, [BOOT_MEASUREMENTS[0], forged, volumeKey].map((m) => record(m)).join(''));
  const r = await sextant(['eventlog', 'replay', fw, '--userspace-log', userspace, '--json']);
  t.is(r.exitCode, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { userspace: { ok: boolean; records: { status: string; reason?: string }[] } };
  t.false(out.userspace.ok);
  t.deepEqual(out.userspace.records.map((c) => c.status), ['verified', 'mismatch', 'unverifiable']);
  t.regex(out.userspace.records[1].reason!, /not the hash of "ready"/);
  const text = await sextant(['eventlog', 'replay', fw, '--userspace-log', userspace]);
  t.regex(text.stdout, /userspace {3}1 {2}PCR 11 {2}mismatch +phase "ready"/);
});

test('a userspace log that is not one is EVENTLOG_MALFORMED naming the record; a CEL-JSON log given as the firmware log is EVENTLOG_FORMAT_UNSUPPORTED', async (t) => {
  const ok = record(BOOT_MEASUREMENTS[0]);
  const cases: [string, RegExp][] = [
    [`${ok}\x1e{"pcr":11,"digests":[`, /record 1: is not JSON/],
    [`${ok}\x1e{"pcr":24,"digests":[{"hashAlg":"sha256","digest":"00"}]}`, /record 1: "pcr"/],
    [`\x1e{"pcr":11,"digests":[{"hashAlg":"sha256","digest":"abcd"}]}`, /record 0: digests\[0\] is not a sha256 digest/],
    [`\x1e{"pcr":11}`, /record 0: "digests"/],
  ];
  for (const [text, message] of cases) {
    const e = t.throws(() => parseUserspaceLog(Buffer.from(text)));
    t.true(isSextantError(e, 'EVENTLOG_MALFORMED'), String(e));
    t.regex(e!.message, message);
  }
  // A record lacking a bank the firmware log has: systemd measures every active bank.
  const sha256Only = parseUserspaceLog(Buffer.from(record(BOOT_MEASUREMENTS[0], ['sha256'])));
  const e = t.throws(() => replayWithUserspace(parseEventLog(firmwareLog), sha256Only));
  t.true(isSextantError(e, 'EVENTLOG_MALFORMED'));
  t.regex(e!.message, /no sha1 digest/);
  const asFirmware = path.join(dir, 'cel-as-firmware.log');
  await writeFile(asFirmware, ok);
  const r = await sextant(['eventlog', 'replay', asFirmware, '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'EVENTLOG_FORMAT_UNSUPPORTED' });
  t.regex(JSON.parse(r.stdout).message, /--userspace-log/);
});

test('userspace replay equals independent extension on top of the firmware log, in every bank (property)', (t) => {
  const log = parseEventLog(firmwareLog);
  const firmware = replayEventLog(log);
  const measurement = fc.record({ pcr: fc.constantFrom(9, 11, 12, 15, 23), eventType: fc.constantFrom('phase', 'machine-id', 'filesystem', 'nvpcr-init'), string: fc.string({ maxLength: 40 }) });
  fc.assert(
    fc.property(fc.array(measurement, { maxLength: 12 }), (ms) => {
      const r = replayWithUserspace(log, parseUserspaceLog(Buffer.from(ms.map((m) => record(m)).join(''))));
      t.true(r.userspace.every((c) => c.status === 'verified'));
      for (const b of BANKS) {
        const events = ms.map((m) => ({ pcr: m.pcr, type: 0xd, data: Buffer.from(m.string) }));
        // Continue each PCR from the firmware's value: prefix the firmware value as an initial state.
        for (const pcr of new Set(ms.map((m) => m.pcr))) {
          let v: Buffer = Buffer.from(firmware[b]![String(pcr)] ?? '00'.repeat(bankDigest(b, Buffer.alloc(0)).length), 'hex');
          for (const e of events.filter((x) => x.pcr === pcr)) v = bankDigest(b, v, bankDigest(b, e.data));
          t.is(r.banks[b][String(pcr)], v.toString('hex'));
        }
      }
    }),
    { numRuns: 60 },
  );
  t.deepEqual(replayWithUserspace(log, []).banks, firmware);
});

test('arbitrary text as a userspace log only raises EVENTLOG_MALFORMED', (t) => {
  const ok = record(BOOT_MEASUREMENTS[0]);
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), fc.nat({ max: ok.length }), (junk, cut) => {
      for (const text of [junk, ok.slice(0, cut) + junk, `\x1e${junk}`]) {
        try {
          replayWithUserspace(parseEventLog(firmwareLog), parseUserspaceLog(Buffer.from(text)));
        } catch (e) {
          if (!isSextantError(e, 'EVENTLOG_MALFORMED')) throw e;
        }
      }
    }),
    { numRuns: 500 },
  );
  t.pass();
});
