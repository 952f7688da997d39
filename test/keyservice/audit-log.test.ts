import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, headPath, verifyAuditLog } from '../../keyservice/audit/log.js';
import { sextant } from '../helpers/cli.js';

async function logWith(n: number): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-'));
  const file = path.join(dir, 'audit.log');
  const log = await AuditLog.open(file);
  for (let i = 0; i < n; i++) await log.append({ decision: i % 2 ? 'refuse' : 'release', diskUuid: `disk-${i}`, code: i % 2 ? 'NONCE_REPLAYED' : undefined });
  await log.close();
  return { file, dir };
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).trimEnd().split('\n');
}

test('an intact log verifies, also through the CLI', async (t) => {
  const { file, dir } = await logWith(5);
  t.like(await verifyAuditLog(file), { count: 5, headChecked: true });
  const r = await sextant(['keyservice', 'audit', 'verify', file, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: true, records: 5 });
  await rm(dir, { recursive: true });
});

test('reopening continues the chain', async (t) => {
  const { file, dir } = await logWith(3);
  const log = await AuditLog.open(file);
  await log.append({ decision: 'start' });
  await log.close();
  t.like(await verifyAuditLog(file), { count: 4 });
  await rm(dir, { recursive: true });
});

const tamperings: [string, (l: string[]) => string[]][] = [
  ['one byte edited', (l) => l.map((x, i) => (i === 1 ? x.replace('disk-1', 'disk-9') : x))],
  ['one line dropped', (l) => l.filter((_, i) => i !== 2)],
  ['two lines swapped', (l) => [l[0], l[2], l[1], ...l.slice(3)]],
  ['last line edited', (l) => l.map((x, i) => (i === l.length - 1 ? x.replace('disk-4', 'disk-0') : x))],
  ['tail cut off', (l) => l.slice(0, -1)],
];

for (const [name, tamper] of tamperings) {
  test(`detected: ${name} (AUDIT_LOG_BROKEN, CLI exit 1)`, async (t) => {
    const { file, dir } = await logWith(5);
    await writeFile(file, tamper(await lines(file)).join('\n') + '\n');
    await t.throwsAsync(verifyAuditLog(file), { code: 'AUDIT_LOG_BROKEN' });
    const r = await sextant(['keyservice', 'audit', 'verify', file, '--json']);
    t.is(r.exitCode, 1);
    t.like(JSON.parse(r.stdout), { ok: false, code: 'AUDIT_LOG_BROKEN' });
    await rm(dir, { recursive: true });
  });
}

test('a service refuses to append to a broken log', async (t) => {
  const { file, dir } = await logWith(4);
  const l = await lines(file);
  await writeFile(file, [l[1], l[0], ...l.slice(2)].join('\n') + '\n');
  await t.throwsAsync(AuditLog.open(file), { code: 'AUDIT_LOG_BROKEN' });
  await rm(dir, { recursive: true });
});

test('concurrent appends stay chained', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-'));
  const file = path.join(dir, 'audit.log');
  const log = await AuditLog.open(file);
  await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ decision: 'release', i })));
  await log.close();
  t.like(await verifyAuditLog(file), { count: 50 });
  await rm(dir, { recursive: true });
});

test('the head file is written off the write path: never ahead of the durable records during a burst, equal to them once settled and after close', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.log');
  const log = await AuditLog.open(file);
  const readHeadFile = async () => JSON.parse(await readFile(headPath(file), 'utf8').catch(() => '{"count":0}')) as { count: number; last?: string };
  let next = 0;
  let stop = false;
  const samples: { head: number; durable: number }[] = [];
  const sampler = (async () => {
    while (!stop) {
      const head = (await readHeadFile()).count;
      samples.push({ head, durable: log.durableHead.count });
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < 1500) await log.append({ decision: 'challenge', i: next++ });
  }));
  stop = true;
  await sampler;
  t.true(samples.length > 0);
  for (const s of samples) t.true(s.head <= s.durable, `head ${s.head} ahead of ${s.durable}`);
  await log.settled();
  t.deepEqual(await readHeadFile(), log.durableHead);
  await log.append({ decision: 'challenge', i: 'last' });
  await log.close();
  t.like(await readHeadFile(), { count: 1501 });
  t.like(await verifyAuditLog(file), { count: 1501, headChecked: true });
});

test('a batch refused whole (an oversized release) on an idle log does not stall the appends after it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = await AuditLog.open(path.join(dir, 'audit.log'), { limits: { maxRecordBytes: 1024 } });
  await log.append({ decision: 'challenge' });
  await t.throwsAsync(log.append({ decision: 'release', pad: 'x'.repeat(4096) }), { code: 'AUDIT_RECORD_TOO_LARGE' });
  t.like(await log.append({ decision: 'challenge' }), { seq: 1 });
  await log.close();
});
