import test from 'ava';
import fc from 'fast-check';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HashAlg } from '../../lib/bytes.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog, replayReport } from '../../measurements/eventlog/replay.js';
import {
  EV_EFI_ACTION,
  EV_EVENT_TAG,
  EV_IPL,
  EV_NO_ACTION,
  EV_SEPARATOR,
  EXTRA_BANKS,
  buildEventLog,
  buildTcg12Log,
  expectedPcrs,
  tpm2EventlogPcrs,
  type AnyBank,
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

const EVERY_BANK: AnyBank[] = [...ALL_BANKS, ...(Object.keys(EXTRA_BANKS) as AnyBank[])];

test('replay equals independent extension in every bank, SM3 and SHA-3 included, and in the TCG 1.2 format (property)', (t) => {
  const types = [EV_SEPARATOR, EV_EFI_ACTION, EV_IPL, EV_EVENT_TAG, EV_NO_ACTION, 0x80000003, 0x1, 0x8];
  fc.assert(
    fc.property(fc.subarray(EVERY_BANK, { minLength: 1 }), fc.array(eventArb(types), { maxLength: 20 }), fc.boolean(), (banks, events, hcrtm) => {
      const all: SynthEvent[] = hcrtm ? [{ pcr: 0, type: 0x80000010, data: Buffer.from('HCRTM') }, ...events] : events;
      const agile = replayReport(parseEventLog(buildEventLog(all, { banks })));
      t.is(agile.format, 'crypto-agile');
      t.deepEqual(agile.banks, expectedPcrs(all, banks, hcrtm ? 4 : undefined));
      const tcg12 = replayReport(parseEventLog(buildTcg12Log(all.length ? all : [{ pcr: 1, type: 0x1, data: Buffer.from('x') }])));
      t.is(tcg12.format, 'tcg1.2-sha1');
      t.deepEqual(tcg12.banks, expectedPcrs(all.length ? all : [{ pcr: 1, type: 0x1, data: Buffer.from('x') }], ['sha1'], hcrtm ? 4 : undefined));
    }),
    { numRuns: 120 },
  );
});

test('PCR 0 start values of the PC Client spec: reset 0, StartupLocality 0/3/4, H-CRTM 4', (t) => {
  const crtm: SynthEvent = { pcr: 0, type: 0x8, data: Buffer.from('1.0\0', 'utf16le') };
  for (const locality of [0, 3, 4]) {
    const r = replayReport(parseEventLog(buildEventLog([crtm], { banks: ['sha256', 'sm3_256'], startupLocality: locality })));
    t.deepEqual(r.banks, expectedPcrs([crtm], ['sha256', 'sm3_256'], locality), `StartupLocality ${locality}`);
    t.deepEqual(r.pcr0, { locality, source: 'StartupLocality' });
  }
  // H-CRTM: _TPM_Hash_Start at locality 4 resets PCR 0 to 00..04, then _TPM_Hash_End extends the
  // H-CRTM digest, which the log records as EV_EFI_HCRTM_EVENT; with or without a StartupLocality event.
  const hcrtm: SynthEvent[] = [{ pcr: 0, type: 0x80000010, data: Buffer.from('HCRTM'), digests: { sha256: Buffer.alloc(32, 0x5a) } }, crtm];
  for (const startupLocality of [undefined, 4]) {
    const r = replayReport(parseEventLog(buildEventLog(hcrtm, { banks: ['sha256'], startupLocality })));
    t.deepEqual(r.pcr0, { locality: 4, source: 'H-CRTM' });
    t.deepEqual(r.banks, expectedPcrs(hcrtm, ['sha256'], 4));
    t.not(r.banks.sha256['0'], expectedPcrs(hcrtm, ['sha256']).sha256['0']);
  }
  t.deepEqual(replayReport(parseEventLog(buildEventLog([crtm]))).pcr0, { locality: 0, source: 'reset' });
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
