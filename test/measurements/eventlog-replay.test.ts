import test from 'ava';
import fc from 'fast-check';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HashAlg } from '../../lib/bytes.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog } from '../../measurements/eventlog/replay.js';
import {
  EV_EFI_ACTION,
  EV_EVENT_TAG,
  EV_IPL,
  EV_NO_ACTION,
  EV_SEPARATOR,
  buildEventLog,
  expectedPcrs,
  sampleBootEvents,
  type SynthEvent,
} from '../helpers/eventlog.js';

const ALL_BANKS: HashAlg[] = ['sha1', 'sha256', 'sha384', 'sha512'];

const bankSubset = fc.subarray(ALL_BANKS, { minLength: 1 });

function eventArb(types: number[]): fc.Arbitrary<SynthEvent> {
  return fc.record({
    pcr: fc.integer({ min: 0, max: 23 }),
    type: fc.constantFrom(...types),
    data: fc.uint8Array({ maxLength: 48 }),
  });
}

test('replay of a synthesized log equals the PCRs the extend rule gives (property)', (t) => {
  fc.assert(
    fc.property(
      bankSubset,
      fc.array(eventArb([EV_SEPARATOR, EV_EFI_ACTION, EV_IPL, EV_EVENT_TAG, EV_NO_ACTION, 0x80000003, 0x1, 0xdead]), { maxLength: 24 }),
      fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      (banks, events, locality) => {
        const log = parseEventLog(buildEventLog(events, { banks, startupLocality: locality }));
        t.deepEqual(replayEventLog(log), expectedPcrs(events, banks, locality));
      },
    ),
    { numRuns: 150 },
  );
});

test('StartupLocality 3 starts PCR 0 at 00..03 in every bank; EV_NO_ACTION is never extended', (t) => {
  const events: SynthEvent[] = [
    { pcr: 0, type: EV_NO_ACTION, data: Buffer.from('some vendor info') },
    { pcr: 0, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  ];
  const banks = replayEventLog(parseEventLog(buildEventLog(events, { banks: ['sha1', 'sha256'], startupLocality: 3 })));
  // By hand: H(00..03 || H(00000000)) per bank.
  t.is(banks.sha256?.['0'], expectedPcrs([events[1]], ['sha256'], 3).sha256['0']);
  t.is(banks.sha1?.['0'], expectedPcrs([events[1]], ['sha1'], 3).sha1['0']);
  t.not(banks.sha256?.['0'], expectedPcrs([events[1]], ['sha256']).sha256['0']);
});

test('a log with only EV_NO_ACTION events touches no PCR except PCR 0 via StartupLocality', (t) => {
  const banks = replayEventLog(parseEventLog(buildEventLog([], { banks: ['sha256'], startupLocality: 4 })));
  t.deepEqual(banks, { sha256: { '0': '00'.repeat(31) + '04' } });
  t.deepEqual(replayEventLog(parseEventLog(buildEventLog([{ pcr: 3, type: EV_NO_ACTION, data: Buffer.alloc(1) }]))), { sha1: {}, sha256: {} });
});

/** Parses the `pcrs:` block at the end of tpm2_eventlog's YAML. */
function tpm2EventlogPcrs(yaml: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  const at = yaml.lastIndexOf('\npcrs:');
  if (at < 0) throw new Error('tpm2_eventlog printed no pcrs block');
  let bank: string | undefined;
  for (const line of yaml.slice(at).split('\n')) {
    const b = /^ {2}(\w+):\s*$/.exec(line);
    if (b) out[(bank = b[1])] = {};
    const p = /^ {4}(\d+)\s*:\s*0x([0-9a-fA-F]+)/.exec(line);
    if (p && bank) out[bank][p[1]] = p[2].toLowerCase();
  }
  return out;
}

// Second opinion: tpm2-tools' tpm2_eventlog (5.4 extends StartupLocality and other
// EV_NO_ACTION events into PCR 0, against the spec, so the logs it judges carry none).
test('replay agrees with tpm2_eventlog on synthesized logs (known answers from tpm2-tools)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sextant-eventlog-'));
  try {
    const cases: { events: SynthEvent[]; banks: HashAlg[] }[] = [
      { events: sampleBootEvents(), banks: ['sha1', 'sha256'] },
      { events: sampleBootEvents(), banks: ALL_BANKS },
      ...fc.sample(
        fc.record({ events: fc.array(eventArb([EV_SEPARATOR, EV_EFI_ACTION, EV_IPL, 0x1]), { minLength: 1, maxLength: 30 }), banks: bankSubset }),
        { numRuns: 6, seed: 20261126 },
      ),
    ];
    for (const [i, c] of cases.entries()) {
      const file = path.join(dir, `log${i}.bin`);
      await writeFile(file, buildEventLog(c.events, { banks: c.banks }));
      const r = await execa('tpm2_eventlog', [file]);
      const theirs = tpm2EventlogPcrs(r.stdout);
      const ours = replayEventLog(parseEventLog(buildEventLog(c.events, { banks: c.banks })));
      t.deepEqual(ours, theirs, `case ${i}`);
      t.true(Object.keys(theirs).length === c.banks.length, `case ${i}: tpm2_eventlog replayed every bank`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
