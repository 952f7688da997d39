import test from 'ava';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileStatusStore, readStatusFile, renderStatus, type AgentStatus } from '../../../agent/run/status.js';
import { tempDir } from '../disk/images.js';

const S: AgentStatus = {
  v: 1,
  bootId: 'b',
  runs: 2,
  startedAt: '2026-11-27T00:00:00.000Z',
  updatedAt: '2026-11-27T00:00:05.000Z',
  step: 'attest',
  outcome: 'waiting',
  path: 'rejoin',
  role: 'rejoin',
  device: '/dev/vdb1',
  diskUuid: 'u',
  steps: { config: { state: 'done', startedAt: 'a', finishedAt: 'b', ms: 3 }, attest: { state: 'running', startedAt: 'c' } },
  lastError: { step: 'attest', code: 'KEYSERVICE_UNREACHABLE', message: 'connect ECONNREFUSED', at: 'd' },
};

test('the status file is 0600, replaced atomically (no temporary file left), and reads back', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'run/sextant/agent-status.json');
  const store = fileStatusStore(file);
  t.is(await store.load(), undefined);
  await store.save(S);
  await store.save({ ...S, runs: 3 });
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.deepEqual(await readdir(path.dirname(file)), ['agent-status.json']);
  t.deepEqual(await store.load(), { ...S, runs: 3 });
});

test('a file that is not a status is an error, not an empty status', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'x.json');
  await writeFile(file, '{"hello":1}');
  await t.throwsAsync(readStatusFile(file), { code: 'IO_FAILED' });
  await writeFile(file, 'not json');
  await t.throwsAsync(readStatusFile(file), { code: 'IO_FAILED' });
});

test('the human table names every step, the outcome and the last error', (t) => {
  const text = renderStatus(S);
  t.regex(text, /outcome waiting at step attest \(run 2/);
  for (const step of ['config', 'inventory', 'find-disk', 'attest', 'disk', 'lock', 'join', 'done']) t.regex(text, new RegExp(`^${step} `, 'm'));
  t.regex(text, /^config\s+done\s+3/m);
  t.regex(text, /last error at attest .*KEYSERVICE_UNREACHABLE/);
  t.notRegex(text, /undefined/);
});
