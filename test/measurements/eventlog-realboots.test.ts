/**
 * Real event logs captured from OVMF + swtpm boots (test/fixtures/boots/<name>/, written by the
 * boot harness together with the PCR values read in the same boot): the replay must reproduce
 * those PCRs exactly, tpm2_eventlog must agree, and every event must decode.
 */
import test from 'ava';
import fc from 'fast-check';
import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isSextantError } from '../../lib/errors.js';
import { compareWithQuote } from '../../measurements/eventlog/compare.js';
import { describeEvent } from '../../measurements/eventlog/describe.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog, startupLocality } from '../../measurements/eventlog/replay.js';
import type { HashAlg } from '../../lib/bytes.js';
import { tpm2EventlogPcrs } from '../helpers/eventlog.js';
import { FIXTURES } from '../helpers/paths.js';

const BOOTS_DIR = path.join(FIXTURES, 'boots');
const boots = existsSync(BOOTS_DIR)
  ? readdirSync(BOOTS_DIR).filter((d) => existsSync(path.join(BOOTS_DIR, d, 'eventlog.bin')) && existsSync(path.join(BOOTS_DIR, d, 'pcrs.json')))
  : [];

function load(name: string): { log: Buffer; pcrs: Record<string, Record<string, string>> } {
  const dir = path.join(BOOTS_DIR, name);
  return { log: readFileSync(path.join(dir, 'eventlog.bin')), pcrs: JSON.parse(readFileSync(path.join(dir, 'pcrs.json'), 'utf8')).banks };
}

// PCR 10 is IMA's: the kernel extends it after boot, outside the firmware log.
const FIRMWARE_LOG_PCRS = [...Array(24).keys()].filter((p) => p !== 10);

test('real boot fixtures are present', (t) => {
  t.true(boots.length >= 1, `no eventlog.bin + pcrs.json under ${BOOTS_DIR}`);
});

for (const name of boots) {
  test(`${name}: replay reproduces every PCR read in the same boot, in every bank`, (t) => {
    const { log, pcrs } = load(name);
    const replay = replayEventLog(parseEventLog(log));
    t.deepEqual(Object.keys(replay).sort(), Object.keys(pcrs).sort());
    for (const bank of Object.keys(pcrs) as HashAlg[]) {
      const c = compareWithQuote(replay, pcrs[bank], { bank, pcrs: FIRMWARE_LOG_PCRS });
      t.true(c.ok, `${bank}: first difference ${JSON.stringify(c.firstMismatch)}`);
      t.true(Object.keys(replay[bank]!).length >= 8, `${bank}: the log touches PCRs 0-7 at least`);
    }
  });

  test(`${name}: tpm2_eventlog replays the same values`, async (t) => {
    const { log } = load(name);
    const parsed = parseEventLog(log);
    t.false(parsed.events.some((e) => startupLocality(e) !== undefined), 'tpm2_eventlog 5.4 mishandles StartupLocality');
    const r = await execa('tpm2_eventlog', [path.join(BOOTS_DIR, name, 'eventlog.bin')]);
    t.deepEqual(replayEventLog(parsed), tpm2EventlogPcrs(r.stdout));
  });

  test(`${name}: every event decodes, and the boot's components are named`, (t) => {
    const events = parseEventLog(load(name).log).events;
    const lines = events.map((e) => `${e.pcr} ${e.typeName} ${describeEvent(e)}`);
    t.deepEqual(lines.filter((l) => l.includes('(undecodable')), []);
    t.true(lines.includes('4 EV_EFI_ACTION "Calling EFI Application from Boot Option"'));
    t.true(lines.some((l) => /^4 EV_EFI_BOOT_SERVICES_APPLICATION .*\\EFI\\BOOT\\BOOTX64\.EFI \(\d+ bytes at 0x[0-9a-f]+\)$/.test(l)));
    t.true(lines.some((l) => /^5 EV_EFI_GPT_EVENT GPT disk [0-9a-f-]{36}, \d+ partitions?: 1:.*EFI System Partition/.test(l)));
    t.true(lines.includes('9 EV_EVENT_TAG tag 0x8f3b22ed "LOADED_IMAGE::LoadOptions"'));
    t.true(lines.includes('9 EV_EVENT_TAG tag 0x8f3b22ec "Linux initrd"'));
    t.true(lines.some((l) => /^1 EV_EFI_VARIABLE_BOOT BootOrder = Boot[0-9A-F]{4}/.test(l)));
    t.true(lines.includes('7 EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot = 0 (off)'));
  });

  test(`${name}: trailing zero padding (as securityfs may show it) changes nothing`, (t) => {
    const { log } = load(name);
    t.deepEqual(replayEventLog(parseEventLog(Buffer.concat([log, Buffer.alloc(4096)]))), replayEventLog(parseEventLog(log)));
  });

  test(`${name}: mutations of the real log never throw anything but EVENTLOG_* errors (fuzz seed)`, (t) => {
    const { log } = load(name);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: log.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat({ max: log.length }),
        (flips, cut) => {
          const b = Buffer.from(log);
          for (const [i, v] of flips) b[i] = v;
          try {
            const parsed = parseEventLog(b.subarray(0, cut));
            replayEventLog(parsed);
            parsed.events.forEach(describeEvent);
          } catch (e) {
            if (!isSextantError(e, 'EVENTLOG_TRUNCATED') && !isSextantError(e, 'EVENTLOG_MALFORMED') && !isSextantError(e, 'EVENTLOG_FORMAT_UNSUPPORTED')) throw e;
          }
        },
      ),
      { numRuns: 300 },
    );
    t.pass();
  });
}

test('a systemd 262 stub boot: its SMBIOS measurement into PCR 1 is named as systemd\'s tagged event', (t) => {
  const name = 'sid-stub262';
  if (!boots.includes(name)) return t.fail(`no ${name} boot fixture`);
  const lines = parseEventLog(load(name).log).events.map((e) => `${e.pcr} ${e.typeName} ${describeEvent(e)}`);
  t.true(lines.includes('1 EV_EVENT_TAG tag 0xd5cb7cbc (systemd: SMBIOS type 1) "smbios:type1"'), lines.filter((l) => l.startsWith('1 ')).join('\n'));
});
