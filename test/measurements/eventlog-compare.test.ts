import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hash } from '../../lib/bytes.js';
import { compareWithQuote, explainEventMatch, matchEvents, type ExpectedEvent } from '../../measurements/eventlog/compare.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog } from '../../measurements/eventlog/replay.js';
import { sextant } from '../helpers/cli.js';
import { EV_EFI_ACTION, EV_EFI_BOOT_SERVICES_APPLICATION, EV_SEPARATOR, buildEventLog, expectedPcrs, imageLoadEventData, type SynthEvent } from '../helpers/eventlog.js';

const sha = (s: string | Buffer): string => hash('sha256', Buffer.from(s)).toString('hex');
const ACTION = 'Calling EFI Application from Boot Option';

function pcr4Events(ukiContent: string, extra: SynthEvent[] = []): SynthEvent[] {
  return [
    { pcr: 4, type: EV_EFI_ACTION, data: Buffer.from(ACTION) },
    { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
    ...extra,
    { pcr: 4, type: EV_EFI_BOOT_SERVICES_APPLICATION, data: imageLoadEventData('\\EFI\\BOOT\\BOOTX64.EFI'), digests: { sha256: hash('sha256', Buffer.from(ukiContent)) } },
    { pcr: 7, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  ];
}

const expected: ExpectedEvent[] = [
  { pcr: 4, type: 'EV_EFI_ACTION', digest: sha(ACTION), description: ACTION },
  { pcr: 4, type: 'EV_SEPARATOR', digest: sha(Buffer.alloc(4)), description: 'separator' },
  { pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', digest: sha('uki v1'), description: 'UKI Authenticode hash' },
];

const logOf = (events: SynthEvent[]) => parseEventLog(buildEventLog(events, { banks: ['sha256'] }));

test('compareWithQuote accepts the quote a log replays to and names the lowest differing PCR', (t) => {
  const events = pcr4Events('uki v1');
  const replay = replayEventLog(logOf(events));
  const quote = { ...expectedPcrs(events, ['sha256']).sha256 };
  t.true(compareWithQuote(replay, quote).ok);
  const tampered = { ...quote, '4': 'aa'.repeat(32), '7': 'bb'.repeat(32) };
  const c = compareWithQuote(replay, tampered);
  t.false(c.ok);
  t.is(c.firstMismatch?.pcr, 4);
  t.is(c.firstMismatch?.quoted, 'aa'.repeat(32));
});

test('compareWithQuote: an untouched PCR replays to its reset value; an absent quoted PCR differs', (t) => {
  const replay = replayEventLog(logOf(pcr4Events('uki v1')));
  t.true(compareWithQuote(replay, { '9': '00'.repeat(32), '17': 'ff'.repeat(32) }, { pcrs: [9, 17] }).ok);
  const c = compareWithQuote(replay, {}, { pcrs: [4] });
  t.false(c.ok);
  t.is(c.firstMismatch?.quoted, undefined);
});

test('matchEvents matches a correct boot event by event', (t) => {
  const r = matchEvents(expected, logOf(pcr4Events('uki v1')).events);
  t.true(r.ok);
  t.deepEqual(r.pcrs, [4]);
  t.deepEqual(r.results.map((m) => m.status), ['match', 'match', 'match']);
});

test('matchEvents names the component whose digest changed', (t) => {
  const r = matchEvents(expected, logOf(pcr4Events('uki v2')).events);
  t.false(r.ok);
  const bad = r.results.filter((m) => m.status !== 'match');
  t.is(bad.length, 1);
  t.is(bad[0].status, 'mismatch');
  t.is(bad[0].expected?.description, 'UKI Authenticode hash');
  t.is(bad[0].actual?.digest, sha('uki v2'));
  t.regex(explainEventMatch(bad[0]), /PCR 4: EV_EFI_BOOT_SERVICES_APPLICATION "UKI Authenticode hash" expected digest/);
});

test('matchEvents reports an extra logged event as unexpected and a lost one as missing', (t) => {
  const extra = matchEvents(expected, logOf(pcr4Events('uki v1', [{ pcr: 4, type: EV_EFI_ACTION, data: Buffer.from('shim') }])).events);
  t.deepEqual(extra.results.map((m) => m.status), ['match', 'match', 'unexpected', 'match']);
  const lost = pcr4Events('uki v1').filter((e) => e.type !== EV_SEPARATOR);
  const missing = matchEvents(expected, logOf(lost).events);
  t.deepEqual(missing.results.map((m) => m.status), ['match', 'missing', 'match']);
  t.is(missing.results[1].expected?.type, 'EV_SEPARATOR');
});

test('sextant eventlog compare exits 0 on a match and 1 naming the component otherwise', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sextant-eventlog-compare-'));
  try {
    const good = path.join(dir, 'good.bin');
    const bad = path.join(dir, 'bad.bin');
    const exp = path.join(dir, 'expected.json');
    await writeFile(good, buildEventLog(pcr4Events('uki v1'), { banks: ['sha256'] }));
    await writeFile(bad, buildEventLog(pcr4Events('uki v2'), { banks: ['sha256'] }));
    const pcrs = { '4': expectedPcrs(pcr4Events('uki v1'), ['sha256']).sha256['4'], '9': '00'.repeat(32) };
    await writeFile(exp, JSON.stringify({ pcrs, events: expected }));
    const ok = await sextant(['eventlog', 'compare', good, '--expect', exp, '--json']);
    t.is(ok.exitCode, 0, ok.stderr);
    t.true(JSON.parse(ok.stdout).ok);
    const no = await sextant(['eventlog', 'compare', bad, '--expect', exp]);
    t.is(no.exitCode, 1);
    t.regex(no.stdout, /sha256 PCR 4: log replays to [0-9a-f]{64}, quoted [0-9a-f]{64}/);
    t.regex(no.stdout, /mismatch +PCR 4: EV_EFI_BOOT_SERVICES_APPLICATION "UKI Authenticode hash"/);
    const only9 = await sextant(['eventlog', 'compare', bad, '--expect', exp, '--pcrs', '9']);
    t.is(only9.exitCode, 0, 'PCR 4 differs but only PCR 9 was asked for');
    const junk = path.join(dir, 'junk.json');
    await writeFile(junk, '{"pcrs":{"4":"zz"}}');
    const inval = await sextant(['eventlog', 'compare', good, '--expect', junk]);
    t.is(inval.exitCode, 2);
    t.regex(inval.stderr, /^sextant: INVALID_ARGUMENT: /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
