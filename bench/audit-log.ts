/**
 * The audit log on this machine's real disk (os.tmpdir(), ext4 here), all in one run:
 *
 *   1. raw: write ~300 bytes + fdatasync, in a loop (the floor: one disk flush per record)
 *   2. fsync per decision: sequential appends, each awaited (what one agent at a time sees)
 *   3. group commit: 64 appends in flight at a time (records that arrive during a flush
 *      share the next one)
 *
 * Figures are records/s and the ratios 3/2 and 2/1 (the log's own overhead per flush: the
 * head checkpoint after each durable batch).
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog } from '../keyservice/audit/log.js';
import { report } from './harness.js';

const N = Number(process.env.BENCH_N ?? 300);
const dir = await mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'audit-bench-'));
const decision = (i: number) => ({ decision: 'release' as const, client: '127.0.0.1', round: 2, sessionId: 'ab'.repeat(16), diskUuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, role: 'join', measurements: 'bench' });

async function raw(): Promise<number> {
  const fh = await open(path.join(dir, 'raw'), 'a');
  const line = Buffer.from(JSON.stringify(decision(0)) + '\n');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    await fh.write(line);
    await fh.datasync();
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await fh.close();
  return N / s;
}

async function sequential(): Promise<number> {
  const log = await AuditLog.open(path.join(dir, 'seq.log'));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await log.append(decision(i));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await log.close();
  return N / s;
}

async function grouped(inFlight = 64): Promise<number> {
  const log = await AuditLog.open(path.join(dir, 'group.log'));
  const n = N * 10;
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) await log.append(decision(next++));
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await log.close();
  return n / s;
}

try {
  const r = await raw();
  const q = await sequential();
  const g = await grouped();
  report('audit-log', [
    { name: 'raw write+fdatasync per record', value: r, unit: 'records/s' },
    { name: 'fsync per decision (sequential appends)', value: q, unit: 'records/s' },
    { name: 'group commit (64 in flight)', value: g, unit: 'records/s' },
    { name: 'group commit / fsync per decision', value: g / q, unit: 'x' },
    { name: 'fsync per decision / raw fdatasync', value: q / r, unit: 'x' },
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
}
