/**
 * The audit writer's half of issue 11 finding 1: a record JSON.stringify cannot write (the
 * review's 20,000-deep inventory overflowed its stack) used to throw inside the flush loop,
 * a rejection nothing handled, which ended the process. Now it fails its own append only.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, verifyAuditLog } from '../../keyservice/audit/log.js';
import { deepArrays } from '../helpers/protocol-samples.js';

test('an unserializable record is written as a bounded stand-in (the decision stays audited); the records around it are written and the chain verifies', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-audit-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.log');
  const log = await AuditLog.open(file);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  // Queued together, so the bad record sits in one group commit between two good ones.
  const results = await Promise.allSettled([
    log.append({ decision: 'refuse', n: 1 }),
    log.append({ decision: 'refuse', inventory: { x: deepArrays(20_000) } }),
    log.append({ decision: 'refuse', n: 2 }),
  ]);
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled']);
  t.like((results[1] as PromiseFulfilledResult<unknown>).value, { seq: 1, decision: 'refuse', oversized: { error: 'RangeError' } });
  await log.append({ decision: 'refuse', n: 3 });
  await log.close();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(unhandled, []);
  t.like(await verifyAuditLog(file), { count: 4, headChecked: true });
});
