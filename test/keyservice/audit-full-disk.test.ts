/**
 * A full disk under the audit log, on a real small file system (tmpfs of 256 KiB, else a
 * loop-mounted ext4): appends fail closed with AUDIT_UNAVAILABLE, a half-written record is cut
 * back (never acknowledged, never poisoning a restart), and the same open log recovers by
 * itself when space returns.
 */
import test from 'ava';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AuditLog, verifyAuditLog } from '../../keyservice/audit/log.js';
import { mountSmallFs, type SmallFs } from '../helpers/small-fs.js';

let fs: SmallFs;
test.before(async () => {
  fs = await mountSmallFs(256);
});
test.after.always(async () => {
  await fs?.unmount();
});

test.serial('full disk: the record does not fit, the append is refused with AUDIT_UNAVAILABLE, nothing half-written stays; with space back the same log goes on', async (t) => {
  t.log(`small file system: ${fs.mechanism}`);
  const file = path.join(fs.dir, 'audit.log');
  const log = await AuditLog.open(file, { retryMs: 50 });
  for (let i = 0; i < 5; i++) await log.append({ decision: 'release', diskUuid: `disk-${i}` });
  const size = (await stat(file)).size;
  await fs.fill(2048);
  t.true((await fs.freeBytes()) <= 4096);
  // A record larger than what is left: the kernel takes part of it (a short write), then ENOSPC.
  const big = { decision: 'release' as const, diskUuid: 'disk-big', note: 'n'.repeat(12_000) };
  await t.throwsAsync(log.append(big), { code: 'AUDIT_UNAVAILABLE', message: /ENOSPC/ });
  await t.throwsAsync(log.append(big), { code: 'AUDIT_UNAVAILABLE' });
  t.is((await stat(file)).size, size, 'the half-written record was cut back');
  t.like(await verifyAuditLog(file), { count: 5, tornBytes: 0 });
  // A restart while the disk is still full comes up (nothing to repair).
  const reader = await AuditLog.open(path.join(fs.dir, 'audit.log'));
  await reader.close();
  await fs.free();
  const r = await log.append(big);
  t.is(r.seq, 5);
  await log.close();
  t.like(await verifyAuditLog(file), { count: 6, tornBytes: 0 });
});

test.serial('deferred records (start, tail-cut) wait for space instead of failing, and come first when it returns', async (t) => {
  const file = path.join(fs.dir, 'audit-2.log');
  const log = await AuditLog.open(file, { retryMs: 50 });
  await log.append({ decision: 'start' });
  await fs.fill(0);
  const start = log.append({ decision: 'start', note: 'x'.repeat(8000) }, { deferred: true });
  await log.settled();
  await t.throwsAsync(log.append({ decision: 'release', note: 'y'.repeat(8000) }), { code: 'AUDIT_UNAVAILABLE' });
  await fs.free();
  const rec = await start;
  t.is(rec.seq, 1);
  t.is((await log.append({ decision: 'release' })).seq, 2);
  await log.close();
  t.like(await verifyAuditLog(file), { count: 3 });
});
