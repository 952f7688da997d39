import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sextant } from '../helpers/cli.js';
import { bankDigest, buildEventLog, buildTcg12Log, expectedPcrs, sampleBootEvents } from '../helpers/eventlog.js';

const events = sampleBootEvents();
const logBytes = buildEventLog(events, { banks: ['sha1', 'sha256'] });
let dir: string;
let file: string;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sextant-eventlog-cli-'));
  file = path.join(dir, 'log.bin');
  await writeFile(file, logBytes);
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('eventlog replay --json prints {"format":"crypto-agile","banks":{...}} with every PCR the log touches', async (t) => {
  const r = await sextant(['eventlog', 'replay', file, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { format: 'crypto-agile', banks: expectedPcrs(events, ['sha1', 'sha256']) });
});

test('eventlog replay reads the log from stdin with -', async (t) => {
  const r = await sextant(['eventlog', 'replay', '-', '--json'], { input: logBytes });
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout).banks.sha256, expectedPcrs(events, ['sha256']).sha256);
});

test('eventlog show prints one line per event with index, PCR, type, digest and description', async (t) => {
  const r = await sextant(['eventlog', 'show', file]);
  t.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.is(lines.length, events.length + 1);
  const action = lines.find((l) => l.includes('EV_EFI_ACTION'))!;
  t.regex(action, /^\s*\d+ {2}PCR {2}4 {2}EV_EFI_ACTION\s+3d6772b4f84ed475 {2}"Calling EFI Application from Boot Option"$/);
  t.true(lines.some((l) => /PCR  9 .*EV_EVENT_TAG .*"LOADED_IMAGE::LoadOptions"/.test(l)));
});

test('eventlog show --pcr filters and --json gives structured events', async (t) => {
  const r = await sextant(['eventlog', 'show', file, '--pcr', '4', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { events: { pcr: number; type: string; digests: Record<string, string>; description: string }[] };
  t.deepEqual(out.events.map((e) => e.type), ['EV_SEPARATOR', 'EV_EFI_ACTION', 'EV_EFI_BOOT_SERVICES_APPLICATION']);
  t.true(out.events.every((e) => e.pcr === 4));
  t.is(out.events[1].digests.sha256, '3d6772b4f84ed47595d72a2c4c5ffd15f5bb72c7507fe26f2aaee2c69d5633ba'); // sha256sum of the string
});

test('a truncated log exits 2 with EVENTLOG_TRUNCATED; a missing file with FILE_NOT_FOUND', async (t) => {
  const cut = path.join(dir, 'cut.bin');
  await writeFile(cut, logBytes.subarray(0, logBytes.length - 3));
  const r = await sextant(['eventlog', 'replay', cut]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: EVENTLOG_TRUNCATED: .*offset \d+/);
  const m = await sextant(['eventlog', 'show', path.join(dir, 'nope.bin'), '--json']);
  t.is(m.exitCode, 2);
  t.like(JSON.parse(m.stdout), { ok: false, code: 'FILE_NOT_FOUND' });
});

test('eventlog show of a TCG 1.2 log prints its SHA-1 digests; compare checks an SM3 bank like any other', async (t) => {
  const tcg12 = path.join(dir, 'tcg12.bin');
  await writeFile(tcg12, buildTcg12Log(events, { specId: 'Spec ID Event02' }));
  const show = await sextant(['eventlog', 'show', tcg12]);
  t.is(show.exitCode, 0, show.stderr);
  const action = show.stdout.split('\n').find((l) => l.includes('EV_EFI_ACTION'))!;
  t.true(action.includes(bankDigest('sha1', Buffer.from('Calling EFI Application from Boot Option')).toString('hex').slice(0, 16)), action);
  t.regex(show.stdout.split('\n')[0], /EV_NO_ACTION .*Spec ID Event02: spec 1\.2/);

  const sm3 = path.join(dir, 'sm3.bin');
  await writeFile(sm3, buildEventLog(events, { banks: ['sha256', 'sm3_256'] }));
  const expected = expectedPcrs(events, ['sm3_256']).sm3_256;
  const expect = path.join(dir, 'expect-sm3.json');
  await writeFile(expect, JSON.stringify({ banks: { sm3_256: expected } }));
  const ok = await sextant(['eventlog', 'compare', sm3, '--expect', expect, '--json']);
  t.is(ok.exitCode, 0, ok.stdout);
  await writeFile(expect, JSON.stringify({ banks: { sm3_256: { ...expected, '4': '00'.repeat(32) } } }));
  const bad = await sextant(['eventlog', 'compare', sm3, '--expect', expect, '--json']);
  t.is(bad.exitCode, 1);
  t.like(JSON.parse(bad.stdout), { ok: false, quote: [{ bank: 'sm3_256', ok: false, firstMismatch: { pcr: 4 } }] });
});
