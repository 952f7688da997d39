import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readEventLog } from '../../tpm/eventlog-read.js';
import { FIXTURES } from '../helpers/paths.js';

test('a captured firmware event log is read whole', async (t) => {
  const boots = path.join(FIXTURES, 'boots');
  const logs = (await readdir(boots)).map((d) => path.join(boots, d, 'eventlog.bin'));
  t.true(logs.length > 0, 'boot fixtures with event logs exist');
  for (const log of logs) t.deepEqual(Buffer.from(await readEventLog(log)), await readFile(log));
});

test('a log larger than the first buffer is read whole, in one read of a bigger buffer', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-eventlog-'));
  try {
    const big = randomBytes((1 << 20) + 17);
    await writeFile(path.join(dir, 'log'), big);
    t.deepEqual(Buffer.from(await readEventLog(path.join(dir, 'log'))), big);
    await writeFile(path.join(dir, 'exact'), big.subarray(0, 1 << 20));
    t.deepEqual(Buffer.from(await readEventLog(path.join(dir, 'exact'))), big.subarray(0, 1 << 20));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no event log is FILE_NOT_FOUND', async (t) => {
  await t.throwsAsync(readEventLog('/nonexistent/binary_bios_measurements'), { code: 'FILE_NOT_FOUND' });
});
