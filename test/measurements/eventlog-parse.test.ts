import test from 'ava';
import { isSextantError, type SextantErrorCode } from '../../lib/errors.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog, replayReport } from '../../measurements/eventlog/replay.js';
import {
  ALG_IDS,
  EV_EFI_ACTION,
  EV_NO_ACTION,
  EV_SEPARATOR,
  bankDigest,
  buildEventLog,
  buildTcg12Log,
  expectedPcrs,
  legacyEvent,
  pcrEvent2,
  sampleBootEvents,
  specIdEventData,
} from '../helpers/eventlog.js';

function throwsCode(t: import('ava').ExecutionContext, fn: () => unknown, code: SextantErrorCode, offsetInMessage?: number): void {
  const e = t.throws(fn);
  t.true(isSextantError(e, code), `expected ${code}, got ${String(e)}`);
  if (offsetInMessage !== undefined) t.regex(e!.message, new RegExp(`offset ${offsetInMessage}\\b`));
}

const specOnly = (algs = [{ algId: ALG_IDS.sha1, size: 20 }, { algId: ALG_IDS.sha256, size: 32 }]) =>
  legacyEvent(0, EV_NO_ACTION, specIdEventData(algs));

test('parses the Spec ID event and every event with each bank', (t) => {
  const log = parseEventLog(buildEventLog(sampleBootEvents(), { banks: ['sha1', 'sha256', 'sha384', 'sha512'] }));
  t.deepEqual(
    log.specId!.algorithms.map((a) => [a.alg, a.digestSize]),
    [['sha1', 20], ['sha256', 32], ['sha384', 48], ['sha512', 64]],
  );
  t.deepEqual(log.specId!.specVersion, { major: 2, minor: 0, errata: 0 });
  t.is(log.events.length, 1 + sampleBootEvents().length);
  const action = log.events.find((e) => e.type === EV_EFI_ACTION)!;
  t.is(action.typeName, 'EV_EFI_ACTION');
  t.is(action.pcr, 4);
  t.deepEqual(action.digests.map((d) => d.alg), ['sha1', 'sha256', 'sha384', 'sha512']);
  t.is(action.data.toString(), 'Calling EFI Application from Boot Option');
  t.is(log.trailingPadding, 0);
});

test('tolerates zero or 0xFF padding after the last event, as securityfs may present it', (t) => {
  const events = sampleBootEvents();
  const clean = replayEventLog(parseEventLog(buildEventLog(events)));
  for (const fill of [0x00, 0xff]) {
    const log = parseEventLog(buildEventLog(events, { trailing: Buffer.alloc(4096, fill) }));
    t.is(log.trailingPadding, 4096);
    t.deepEqual(replayEventLog(log), clean);
  }
});

test('parses a bank whose digest size comes only from the Spec ID event, and names it per PCR when it cannot be replayed', (t) => {
  const log = parseEventLog(buildEventLog(sampleBootEvents(), { banks: ['sha256'], extraAlgs: [{ algId: 0x00ff, size: 32 }] }));
  t.deepEqual(log.events[3].digests.map((d) => d.alg), ['sha256', 'alg_0x00ff']);
  const r = replayReport(log);
  t.deepEqual(Object.keys(r.banks), ['sha256']);
  t.deepEqual(r.notReplayed.map((n) => [n.alg, n.pcrs]), [['alg_0x00ff', [...new Set(sampleBootEvents().map((e) => e.pcr))].sort((a, b) => a - b)]]);
  t.regex(r.notReplayed[0].reason, /0x00ff/);
});

test('an SM3 bank is replayed with node:crypto, like every SHA-3 bank', (t) => {
  const banks = ['sha256', 'sm3_256', 'sha3_256', 'sha3_384', 'sha3_512'] as const;
  const events = sampleBootEvents();
  const r = replayReport(parseEventLog(buildEventLog(events, { banks: [...banks] })));
  t.deepEqual(r.notReplayed, []);
  t.deepEqual(r.banks, expectedPcrs(events, [...banks]));
  // GB/T 32905-2016 example 1: SM3("abc"), so the bank hashes what the standard says.
  t.is(bankDigest('sm3_256', Buffer.from('abc')).toString('hex'), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
});

test('an unknown event type parses and is named by its number', (t) => {
  const log = parseEventLog(buildEventLog([{ pcr: 14, type: 0x1234abcd, data: Buffer.from([1, 2, 3]) }]));
  t.is(log.events[1].typeName, '0x1234abcd');
});

test('rejects an empty log, an all-padding log, an unknown first event type and an unknown Spec ID version', (t) => {
  throwsCode(t, () => parseEventLog(Buffer.alloc(0)), 'EVENTLOG_TRUNCATED');
  throwsCode(t, () => parseEventLog(Buffer.alloc(64)), 'EVENTLOG_MALFORMED', 0);
  throwsCode(t, () => parseEventLog(legacyEvent(0, 0x7777, Buffer.from('?'))), 'EVENTLOG_MALFORMED', 4);
  throwsCode(t, () => parseEventLog(legacyEvent(0, EV_NO_ACTION, Buffer.from('Spec ID Event09\0', 'latin1'))), 'EVENTLOG_MALFORMED');
});

test('a log without "Spec ID Event03" is a TCG 1.2 SHA-1 log, with or without a Spec ID Event00/02', (t) => {
  const plain = parseEventLog(legacyEvent(0, 0x1, Buffer.from('POST CODE')));
  t.is(plain.format, 'tcg1.2-sha1');
  t.is(plain.specId, undefined);
  // legacyEvent writes a zero digest
  t.deepEqual(replayEventLog(plain), expectedPcrs([{ pcr: 0, type: 1, data: Buffer.from('POST CODE'), digests: { sha1: Buffer.alloc(20) } }], ['sha1']));
  for (const sig of ['Spec ID Event00', 'Spec ID Event02'] as const) {
    const log = parseEventLog(buildTcg12Log(sampleBootEvents(), { specId: sig }));
    t.is(log.format, 'tcg1.2-sha1');
    t.is(log.specId?.signature, sig);
    t.deepEqual(log.specId?.specVersion, { major: 1, minor: 2, errata: 0 });
    t.deepEqual(replayEventLog(log), expectedPcrs(sampleBootEvents(), ['sha1']));
  }
});

test('rejects a Spec ID event with no algorithms or a wrong size for a known one', (t) => {
  throwsCode(t, () => parseEventLog(specOnly([])), 'EVENTLOG_MALFORMED');
  throwsCode(t, () => parseEventLog(specOnly([{ algId: ALG_IDS.sha256, size: 20 }])), 'EVENTLOG_MALFORMED');
});

test('an event whose size runs past the end is EVENTLOG_TRUNCATED naming its offset', (t) => {
  const head = specOnly();
  const ev = pcrEvent2(4, EV_SEPARATOR, [[ALG_IDS.sha1, Buffer.alloc(20)], [ALG_IDS.sha256, Buffer.alloc(32)]], Buffer.alloc(4, 1));
  ev.writeUInt32LE(4000, ev.length - 8); // eventSize
  throwsCode(t, () => parseEventLog(Buffer.concat([head, ev])), 'EVENTLOG_TRUNCATED', head.length);
});

test('every truncation of a valid log is rejected with a typed error', (t) => {
  const full = buildEventLog(sampleBootEvents());
  const starts = parseEventLog(full).events.map((e) => e.offset);
  for (let n = 1; n < full.length; n++) {
    const start = Math.max(...starts.filter((o) => o <= n));
    // A cut exactly between events is a shorter valid log; a cut leaving only the zero bytes
    // of a PCR 0 event's header reads as the zero padding firmware leaves: accepted as such.
    if (start === n || full.subarray(start, n).every((x) => x === 0)) continue;
    const e = t.throws(() => parseEventLog(full.subarray(0, n)));
    t.true(isSextantError(e, 'EVENTLOG_TRUNCATED') || isSextantError(e, 'EVENTLOG_MALFORMED'), `cut at ${n}: ${String(e)}`);
  }
});

test('a digest algorithm missing from the Spec ID event, or a wrong digest count, is EVENTLOG_MALFORMED', (t) => {
  const head = specOnly();
  const sha384 = pcrEvent2(4, EV_SEPARATOR, [[ALG_IDS.sha1, Buffer.alloc(20)], [ALG_IDS.sha384, Buffer.alloc(48)]], Buffer.alloc(4));
  throwsCode(t, () => parseEventLog(Buffer.concat([head, sha384])), 'EVENTLOG_MALFORMED', head.length + 12 + 22);
  const one = pcrEvent2(4, EV_SEPARATOR, [[ALG_IDS.sha1, Buffer.alloc(20)]], Buffer.alloc(4));
  throwsCode(t, () => parseEventLog(Buffer.concat([head, one])), 'EVENTLOG_MALFORMED', head.length + 8);
  const twice = pcrEvent2(4, EV_SEPARATOR, [[ALG_IDS.sha1, Buffer.alloc(20)], [ALG_IDS.sha1, Buffer.alloc(20)]], Buffer.alloc(4));
  throwsCode(t, () => parseEventLog(Buffer.concat([head, twice])), 'EVENTLOG_MALFORMED');
});

test('a measured event beyond PCR 23 is EVENTLOG_MALFORMED', (t) => {
  throwsCode(t, () => parseEventLog(buildEventLog([{ pcr: 24, type: EV_SEPARATOR, data: Buffer.alloc(4) }])), 'EVENTLOG_MALFORMED');
});
