/**
 * The audit log's crash recovery (a write-ahead log): the head file is a lower bound, a torn
 * final record is cut off on open and the cut is audited, while edits, drops and reorders of
 * acknowledged records stay detected. Evidence is stored once by content hash; a per-record
 * cap bounds what one decision can write.
 */
import test from 'ava';
import { appendFile, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, headPath, pcrsEvidence, readAuditRecords, verifyAuditLog } from '../../keyservice/audit/log.js';
import { sha256Hex } from '../../keyservice/audit/record.js';
import { sextant } from '../helpers/cli.js';

async function tmp(): Promise<{ file: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-wal-'));
  return { file: path.join(dir, 'audit.log'), done: () => rm(dir, { recursive: true }) };
}

async function write(file: string, n: number, from = 0): Promise<void> {
  const log = await AuditLog.open(file);
  for (let i = from; i < from + n; i++) await log.append({ decision: 'release', diskUuid: `disk-${i}` });
  await log.close();
}

const lines = async (file: string) => (await readFile(file, 'utf8')).trimEnd().split('\n');

test('a crash between the log fsync and the head rename: records beyond the head are valid, the service opens and continues', async (t) => {
  const { file, done } = await tmp();
  await write(file, 3);
  const stale = await readFile(headPath(file));
  await write(file, 2, 3);
  // What kill -9 after the log's fsync but before the head rename leaves: an older head.
  await writeFile(headPath(file), stale);
  t.like(await verifyAuditLog(file), { count: 5, headChecked: true, beyondHead: 2 });
  await write(file, 1, 5);
  t.like(await verifyAuditLog(file), { count: 6, beyondHead: 0 });
  const r = await sextant(['keyservice', 'audit', 'verify', file, '--json']);
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  await done();
});

test('a torn final record is cut off on open; the cut is audited with its size and SHA-256', async (t) => {
  const { file, done } = await tmp();
  await write(file, 4);
  const before = (await stat(file)).size;
  const torn = '{"seq":4,"time":"2026-12-04T00:00:00.000Z","prev":"ab';
  await appendFile(file, torn);
  // verify (offline) reports the torn tail but passes: it is what a crash leaves.
  const v = await sextant(['keyservice', 'audit', 'verify', file, '--json']);
  t.is(v.exitCode, 0, v.stdout);
  t.like(JSON.parse(v.stdout), { ok: true, records: 4, tornTailBytes: torn.length });
  await write(file, 1, 4);
  const recs = await readAuditRecords(file);
  t.deepEqual(recs.map((r) => r.decision), ['release', 'release', 'release', 'release', 'tail-cut', 'release']);
  t.like(recs[4], { offset: before, bytes: torn.length, sha256: sha256Hex(torn) });
  t.like(await verifyAuditLog(file), { count: 6, tornBytes: 0, tailCuts: 1 });
  await done();
});

test('a torn tail longer than the record of its cut: the leftover bytes are cut too', async (t) => {
  const { file, done } = await tmp();
  await write(file, 2);
  await appendFile(file, 'x'.repeat(5000));
  const log = await AuditLog.open(file);
  await log.close();
  t.like(await verifyAuditLog(file), { count: 3, tornBytes: 0, tailCuts: 1 });
  t.true((await stat(file)).size < 5000);
  await done();
});

const tamperings: [string, (l: string[]) => string[]][] = [
  ['a record edited', (l) => l.map((x, i) => (i === 1 ? x.replace('disk-1', 'disk-9') : x))],
  ['a record dropped', (l) => l.filter((_, i) => i !== 2)],
  ['two records swapped', (l) => [l[0], l[2], l[1], ...l.slice(3)]],
  ['the last acknowledged record edited', (l) => l.map((x, i) => (i === l.length - 1 ? x.replace('disk-4', 'disk-0') : x))],
  ['the last acknowledged record cut in half (looks torn)', (l) => [...l.slice(0, -1), l.at(-1)!.slice(0, 20)]],
  ['acknowledged records cut off', (l) => l.slice(0, -2)],
];

for (const [name, tamper] of tamperings) {
  test(`with crash recovery still detected, by open and by verify: ${name}`, async (t) => {
    const { file, done } = await tmp();
    await write(file, 5);
    const l = tamper(await lines(file));
    const cut = name.includes('cut in half');
    await writeFile(file, l.join('\n') + (cut ? '' : '\n'));
    await t.throwsAsync(verifyAuditLog(file), { code: 'AUDIT_LOG_BROKEN' });
    await t.throwsAsync(AuditLog.open(file), { code: 'AUDIT_LOG_BROKEN' });
    const r = await sextant(['keyservice', 'audit', 'verify', file, '--json']);
    t.is(r.exitCode, 1);
    t.like(JSON.parse(r.stdout), { ok: false, code: 'AUDIT_LOG_BROKEN' });
    await done();
  });
}

test('a torn tail does not hide an edit before it', async (t) => {
  const { file, done } = await tmp();
  await write(file, 3);
  const l = await lines(file);
  await writeFile(file, [l[0], l[1].replace('disk-1', 'disk-7'), l[2]].join('\n') + '\n{"seq":3');
  await t.throwsAsync(AuditLog.open(file), { code: 'AUDIT_LOG_BROKEN' });
  await done();
});

const PCRS = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String(i), (i % 10).toString().repeat(64)]));
const EVENT_LOG = Buffer.alloc(20_000, 7);

test('evidence is stored once by content hash: ten releases, one event log and one PCR set in the log', async (t) => {
  const { file, done } = await tmp();
  const log = await AuditLog.open(file);
  await Promise.all(Array.from({ length: 10 }, (_, i) => log.append({ decision: 'release', diskUuid: `d${i}`, evidence: { pcrs: pcrsEvidence(PCRS), eventLog: EVENT_LOG } })));
  await log.close();
  const text = await readFile(file, 'utf8');
  t.is(text.split(EVENT_LOG.toString('base64')).length - 1, 1, 'the event log once');
  t.is(text.split('"' + PCRS['9'] + '"').length - 1, 0, 'no PCR value inline');
  t.true(text.length < EVENT_LOG.length * 1.34 + 10 * 1024, `log is ${text.length} bytes`);
  t.like(await verifyAuditLog(file), { count: 12, evidenceBlobs: 2 });
  // ... and across a restart too.
  const again = await AuditLog.open(file);
  await again.append({ decision: 'refuse', code: 'MEASUREMENTS_MISMATCH', evidence: { pcrs: pcrsEvidence(PCRS), eventLog: EVENT_LOG } });
  await again.close();
  t.like(await verifyAuditLog(file), { count: 13, evidenceBlobs: 2 });
  const recs = await readAuditRecords(file);
  t.deepEqual(recs.at(-1)!.pcrs, PCRS);
  t.is(recs.at(-1)!.eventLog, EVENT_LOG.toString('base64'));
  await done();
});

/** Rewrites the chain after an edit, as an attacker who recomputes the hashes would. */
function rechain(ls: string[]): string[] {
  let prev = '0'.repeat(64);
  return ls.map((l) => {
    const line = JSON.stringify({ ...(JSON.parse(l) as object), prev });
    prev = sha256Hex(line);
    return line;
  });
}

test('verify checks every referenced blob: content that does not match its hash, or a reference to nothing', async (t) => {
  const { file, done } = await tmp();
  const log = await AuditLog.open(file);
  await log.append({ decision: 'release', evidence: { eventLog: EVENT_LOG } });
  await log.close();
  await rm(headPath(file));
  const l = await lines(file);
  const ev = JSON.parse(l[0]) as { data: string };
  const swapped = rechain([JSON.stringify({ ...ev, data: Buffer.alloc(20_000, 8).toString('base64') }), l[1]]);
  await writeFile(file, swapped.join('\n') + '\n');
  await t.throwsAsync(verifyAuditLog(file), { code: 'AUDIT_LOG_BROKEN', message: /evidence does not match/ });
  const dropped = rechain([l[1]].map((x) => JSON.stringify({ ...(JSON.parse(x) as object), seq: 0 })));
  await writeFile(file, dropped.join('\n') + '\n');
  await t.throwsAsync(verifyAuditLog(file), { code: 'AUDIT_LOG_BROKEN', message: /not earlier in the log/ });
  await done();
});

test('per-record cap: an oversized refusal is written as a bounded stand-in, an oversized release is refused, an unserializable record does not stop the log', async (t) => {
  const { file, done } = await tmp();
  const log = await AuditLog.open(file, { limits: { maxRecordBytes: 4096 } });
  const huge = 'A'.repeat(500_000);
  const r = await log.append({ decision: 'refuse', code: 'PROTOCOL_INVALID', stage: 'parse', inventory: huge });
  t.like(r, { decision: 'refuse', code: 'PROTOCOL_INVALID', oversized: { sha256: sha256Hex(JSON.stringify({ decision: 'refuse', code: 'PROTOCOL_INVALID', stage: 'parse', inventory: huge })) } });
  await t.throwsAsync(log.append({ decision: 'release', diskUuid: 'x', facts: huge }), { code: 'AUDIT_RECORD_TOO_LARGE' });
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const s = await log.append({ decision: 'refuse', code: 'PROTOCOL_INVALID', inventory: deep, n: 1n });
  t.like(s, { decision: 'refuse', oversized: { error: 'RangeError' } });
  await log.append({ decision: 'release', diskUuid: 'after' });
  await log.close();
  t.true((await stat(file)).size < 4 * 4096);
  t.like(await verifyAuditLog(file), { count: 3 });
  await done();
});

test('a copy of a log taken while records beyond its head were being written still verifies', async (t) => {
  const { file, done } = await tmp();
  const log = await AuditLog.open(file);
  const writes = Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ decision: 'challenge', i })));
  const copies: string[] = [];
  for (let i = 0; i < 5; i++) {
    const c = `${file}.copy${i}`;
    await copyFile(headPath(file), c + '.head').catch(() => undefined);
    await copyFile(file, c);
    copies.push(c);
  }
  await writes;
  await log.close();
  for (const c of copies) await t.notThrowsAsync(verifyAuditLog(c));
  await done();
});
